"""Spill_Autoencoder.ipynb: metal spills around tap-hole wells, flagged by an autoencoder's
reconstruction error. ``SpillTask`` runs the stages."""
from cvtasks.spill.task import SpillTask

__all__ = ["SpillTask"]
