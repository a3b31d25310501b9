"""Developer experiments and one-off analyses, not part of the product: ``python -m bundle.dev <command>``; the
scripts in ``scripts/`` are run directly (each says how)."""
