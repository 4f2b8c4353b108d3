"""The model zoo: list, show, pull, push and index zoo folders, build the built-in zoo (``biodl zoo ...``).

Resolving model names (``zoo:NAME``, ``hf://OWNER/REPO``, ``http(s)://BASE/NAME``) lives lower, in
:mod:`biodl.model_sources`, so that every command that loads a bundle accepts them.

>>> from biodl.zoo import list_models, push
>>> [m["name"] for m in list_models()][:2]  # doctest: +SKIP
['breastmnist', 'encode-arid3a']
"""

from __future__ import annotations

from biodl.zoo.catalogue import list_models, pull, show
from biodl.zoo.publish import index_zoo, push

__all__ = ["index_zoo", "list_models", "pull", "push", "show"]
