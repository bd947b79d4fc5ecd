"""XLA:CPU flags for fast training, set before JAX starts its backend.

XLA reads `XLA_FLAGS` once, when the first computation initializes the backend, so
`rbcore/__init__.py` calls `configure_xla()` on import. Flags the user already put in
`XLA_FLAGS` win: ours are only appended when the user's do not mention them. Set
`RBCORE_XLA_DEFAULTS=0` to add nothing (for before/after benchmarks).
"""

from __future__ import annotations

import os
import sys

# Keep the YNNPACK fusions of inference but not for single convolutions: XLA's YNNPACK path
# for the weight-gradient convolutions of this CNN is several times slower than Eigen on CPU
# (profiled in issue 4; supervised training 600 -> 3,300 samples/s on two cores, with the
# max-pool gradient fix in rbcore.model). Numerics only change within float32 rounding.
CPU_FLAGS = {"xla_cpu_experimental_ynn_fusion_type": "-individual_convolution"}


def configure_xla() -> list[str]:
    """Append rbcore's XLA:CPU flags to `XLA_FLAGS` unless set; returns the flags added.

    Does nothing when `RBCORE_XLA_DEFAULTS=0`, and warns if the JAX backend is already
    running (the flags would have no effect).
    """
    if os.environ.get("RBCORE_XLA_DEFAULTS", "1") == "0":
        return []
    current = os.environ.get("XLA_FLAGS", "")
    added = [f"--{k}={v}" for k, v in CPU_FLAGS.items() if f"--{k}" not in current]
    if not added:
        return []
    xb = sys.modules.get("jax._src.xla_bridge")
    if xb is not None and getattr(xb, "_backends", None):
        import warnings

        warnings.warn(
            f"rbcore imported after JAX started: the XLA flags {added} are not in effect; "
            "import rbcore first or set XLA_FLAGS yourself",
            stacklevel=3,
        )
        return []
    os.environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
    return added


EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shells' status for a command ended by Ctrl-C


def exit_with(status: int) -> None:
    """End a command-line run with `status`; after Ctrl-C, without the interpreter's teardown.

    XLA's worker threads can still be running when a KeyboardInterrupt unwinds the main thread;
    tearing the interpreter down under them crashed the process (SIGSEGV; once SIGABRT "FATAL:
    exception not rethrown") after the one-line message, replacing status 130 (issue 25). The
    commands have removed or closed every output by then, so the streams are flushed and the
    process ends.
    """
    if status == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
