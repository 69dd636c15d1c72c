"""A node's schema built once and kept while what it shows is unchanged.

ComfyUI calls a versioned-schema node's define_schema whenever it needs the node's inputs: in a warm
one-step prompt on 0.3.75, three times for the loader and five for the sampler (validation, input
types, fingerprint, execution). Building a Schema with all its inputs and tooltips cost 0.05-0.1 ms on
the 2-core test CPU each time, a third of the pack's time per prompt (bench/pack_meter.py). ComfyUI's
finalize() only adds what is missing (hidden inputs, output ids), so handing it the same Schema again
is safe.
"""
from __future__ import annotations

import functools


def schema_kept_while(depends_on=None):
    """Decorates define_schema. Without `depends_on` the schema is built once (it never changes);
    with it, define_schema(cls, value) receives depends_on()'s value (e.g. a model folder's listing) and
    is called again only when that value is no longer equal to the one its schema was built from."""
    def decorate(build):
        kept: dict = {}

        @functools.wraps(build)
        def define_schema(cls):
            if depends_on is None:
                if cls not in kept:
                    kept[cls] = (None, build(cls))
                return kept[cls][1]
            value = depends_on()
            held = kept.get(cls)
            if held is None or held[0] != value:
                held = kept[cls] = (value, build(cls, value))
            return held[1]
        return define_schema
    return decorate
