"""Styles_Avatars.ipynb: a style generator (MLE, Bayes, a structure learned from the table) and
an avatar generator from per-pixel colour distributions. ``StylesTask`` runs the stages."""
from cvtasks.styles.task import StylesTask

__all__ = ["StylesTask"]
