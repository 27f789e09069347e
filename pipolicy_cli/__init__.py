"""pipolicy: prove that a personal-information protection policy is kept."""

__version__ = "0.1.0"
