"""Turn annotated photos into Object Detection API training data.

Flow: a reader (``voc``, ``coco``, ``tfrecords``) yields :class:`~.annotations.AnnotatedImage`;
``labels`` maps their class names onto the label map; ``validate`` checks every image and box;
``split`` makes the stratified train/validation split; ``writer`` writes sharded TFRecords and the
label map; ``prepare`` runs it all and prints the per-class counts.
"""
