"""cvtasks: the package behind the five computer-vision course notebooks.

Import what you need from the submodules (cvtasks.models, cvtasks.train, ...); this file stays
light so that ``python -m cvtasks --help`` answers without loading torch.
"""
__version__ = "0.1.0"
