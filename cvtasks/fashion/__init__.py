"""Fashion_Classification.ipynb: product category classification on Fashion-MNIST, its
hyperparameter study, and the model the service serves. ``FashionTask`` runs the stages."""
from cvtasks.fashion.task import FashionTask

__all__ = ["FashionTask"]
