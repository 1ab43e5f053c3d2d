"""Side-by-side speed comparisons of our explainers against the reference libraries.

`workbench bench` runs them; see benchmarks/explainers_bench.py for what is measured.
"""
