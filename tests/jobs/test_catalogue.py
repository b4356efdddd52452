"""The jobs the worker registers are the catalogue's (handlers.catalogue.JOBS), each taking exactly the keyword
arguments its entry's TypedDict declares: `<JOB>.call({...})` at an enqueue site is then checked by mypy against
what the job function accepts."""

from __future__ import annotations

import inspect

from handlers import catalogue
from jobs.runtime import load_jobs


def test_registered_jobs_are_the_catalogue() -> None:
    registered = load_jobs()
    assert set(registered) == set(catalogue.JOBS)
    for name, spec in registered.items():
        params = list(inspect.signature(spec.func).parameters.values())[1:]  # after `rt`
        args = catalogue.JOBS[name].args
        assert {p.name for p in params} == set(args.__annotations__), name
        required = {p.name for p in params if p.default is inspect.Parameter.empty}
        assert required == set(args.__required_keys__), f"{name}: required arguments"
