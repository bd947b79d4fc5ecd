"""rbcore: real/bogus classification with mislabel discovery and VAT (Takahashi et al. 2022)."""

from rbcore._xla import configure_xla as _configure_xla

__version__ = "0.1.0"

# Before anything imports jax's backend: see rbcore/_xla.py.
_configure_xla()
