"""COCO class names, for models that come without labels.

``LABELMAP`` is TensorFlow's COCO ``labelmap.txt``: line k names COCO id k (1..90), ``???`` the
ids the 2017 release left out. Models trained on the 80 used classes (Ultralytics) number them
0..79 in this order without gaps.
"""

from __future__ import annotations

LABELMAP = """\
???
person
bicycle
car
motorcycle
airplane
bus
train
truck
boat
traffic light
fire hydrant
???
stop sign
parking meter
bench
bird
cat
dog
horse
sheep
cow
elephant
bear
zebra
giraffe
???
backpack
umbrella
???
???
handbag
tie
suitcase
frisbee
skis
snowboard
sports ball
kite
baseball bat
baseball glove
skateboard
surfboard
tennis racket
bottle
???
wine glass
cup
fork
knife
spoon
bowl
banana
apple
sandwich
orange
broccoli
carrot
hot dog
pizza
donut
cake
chair
couch
potted plant
bed
???
dining table
???
???
toilet
???
tv
laptop
mouse
remote
keyboard
cell phone
microwave
oven
toaster
sink
refrigerator
???
book
clock
vase
scissors
teddy bear
hair drier
toothbrush
"""

#: The 80 used names, in id order: class index i of an 80-class model is ``COCO_80[i]``.
COCO_80 = tuple(name for name in LABELMAP.splitlines()[1:] if name != "???")
