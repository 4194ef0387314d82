from livedroid.cli import main

raise SystemExit(main())
