"""ImageText_Search.ipynb: a 0..1 score of how well a text fits an image, and a search that can
say "no good match". ``SearchTask`` runs the stages; ``service`` is the search a user runs."""
from cvtasks.search.task import SearchTask

__all__ = ["SearchTask"]
