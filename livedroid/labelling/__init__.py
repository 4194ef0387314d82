"""The data loop's runtime half: ``mine`` picks the frames worth labelling and pre-annotates them,
``review`` lets a person correct them in the browser. Both read and write one folder layout
(:mod:`livedroid.labelling.dataset`) that ``livedroid train`` reads as it is."""
