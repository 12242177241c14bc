"""Entry points of ``dppo train`` and ``dppo demo``: ``run`` (the metaloop), ``compare`` (ablations at equal
compute), ``demo``, ``build_tiny`` and ``gpu_bench`` expose ``make_parser()`` and ``main(argv) -> int`` and run as
``python -m training.scripts.<name>``; ``dry_run`` holds what ``dppo train --dry-run`` checks."""
