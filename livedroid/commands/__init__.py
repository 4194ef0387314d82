"""One module per ``livedroid`` command, each with ``add_parser(commands)`` (its options, from the
shared groups of :mod:`livedroid.commands.options`) and ``command(args)`` (its body, importing
the engine only when it runs, so that ``livedroid --help`` stays fast). ``livedroid/cli.py``
builds the parser from them and dispatches; the training commands are the training package's.
"""

#: The commands in the order ``livedroid --help`` lists them.
COMMANDS = ("run", "batch", "bench", "serve", "mine", "review")

#: What ``livedroid --help`` and ``livedroid run --help`` show first.
EXAMPLES = """\
examples:
  livedroid run clip.mp4                       annotate a clip with the default COCO model
  livedroid run clip.mp4 -m star-wars --classes R2-D2,BB-8 --jsonl droids.jsonl
  livedroid run 0 --show                       webcam 0 in a window (q quits)
  livedroid run rtsp://user:pass@cam/stream --output cam.mp4 --jsonl cam.jsonl
  livedroid run photos/ -o annotated/          a folder of images
  livedroid run door.mp4 --line gate=0,0.6,1,0.6 --zone desk=0.1,0.1,0.5,0.1,0.5,0.5:person --events ev.jsonl
                                               track, count crossings and desk visits, log each event
  livedroid batch archive/ --out annotated/    every video of a folder, resumable (--ray for a cluster)
  livedroid mine clip.mp4 -m droids --out mined/  the frames worth labelling, pre-annotated
  livedroid review mined/                      fix them in the browser; then: livedroid train photos/ mined/ --out ...
  livedroid eval droids test-photos/           mAP, confusions and mistakes of any model on annotated photos
"""
