"""File formats read without their libraries: TensorFlow's checkpoint (tensor bundle: :mod:`.tfbundle`,
:mod:`.sstable`, :mod:`.crc32c`) and frozen graph (:mod:`.graphdef`, :mod:`.protowire`), and Python pickles
from FLAME / VOCA (:mod:`.safepickle`, which builds no arbitrary objects).

The lowest stage of the core: knows no network, no mesh. numpy and the stdlib only.
"""
