"""Image.ipynb: chandelier brand classification by transfer learning, a small CNN baseline,
active-learning-assisted labelling and embeddings. ``BrandsTask`` runs the stages."""
from cvtasks.brands.task import BrandsTask

__all__ = ["BrandsTask"]
