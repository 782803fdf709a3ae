"""Simulated TISS operators: the other side of the gateway, for demos and end-to-end tests.

Five operators from the user's manuals (Capital Prev, PASA, Unimed, CASSEMS, IPASGO), each a
profile of data (``simulator/profiles/<key>.toml``) plus the rules that need code
(``simulator/rules.py``). How to run them and what each simulates: the README's "Simulated
operators" section.
"""
