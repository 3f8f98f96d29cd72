"""The outside world: ASE adapters (``kerase3.io.ase``, needs the ``ase`` extra)."""
