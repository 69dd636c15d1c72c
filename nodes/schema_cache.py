"""A node's schema built once and kept while what it shows is unchanged.

ComfyUI calls a versioned-schema node's define_schema whenever it needs the node's inputs: in a warm
one-step prompt on 0.3.75, three times for the loader and five for the sampler (validation, input
types, fingerprint, execution); building it each time was a tenth of the pack's time per prompt
(docs/performance.md). ComfyUI's finalize() only adds what is missing (hidden inputs, output ids), so handing it the same Schema again is safe.
"""
from __future__ import annotations

import functools


def schema_kept_while(depends_on=None):
    """Decorates define_schema. Without `depends_on` the schema is built once (it never changes);
    with it, define_schema(cls, value) receives depends_on()'s value (e.g. a model folder's listing) and
    is called again only when that value is no longer equal to the one its schema was built from."""
    def decorate(build):
        kept: dict = {}  # cls -> (the value its schema was built from, the schema)

        @functools.wraps(build)
        def define_schema(cls):
            value = None if depends_on is None else depends_on()
            held = kept.get(cls)
            if held is None or (held[0] is not value and held[0] != value):  # `is`: a listing kept as it was
                held = kept[cls] = (value, build(cls) if depends_on is None else build(cls, value))
            return held[1]
        return define_schema
    return decorate
