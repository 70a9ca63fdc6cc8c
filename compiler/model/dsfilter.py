"""A campaign's choice of datasets: facet globs and an input set, applied at compile.

Facet globs work as `padocc status --facet`: several globs of one facet, any may
match; different facets, all must match. An input set keeps only the ids it lists.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from compiler.core.diagnostics import Loc, fail, suggest
from compiler.model.types import Dataset


@dataclass(frozen=True)
class DatasetFilter:
    facets: tuple[tuple[str, tuple[str, ...], Loc], ...] = ()  # (facet, globs, where named)
    ids: tuple[tuple[str, Loc], ...] = ()  # an input set: (id, its line in the list file)
    has_ids: bool = False  # an input set was given (an empty one keeps nothing)
    loc: Loc = Loc("")  # where the filter was written, for "matches nothing"

    def apply(
        self, workflow: str, datasets: Iterable[Dataset], facets: set[str]
    ) -> tuple[Dataset, ...]:
        """The datasets kept, in their order. Raises CompileError for a facet no dataset
        has, an id the workflow does not have, or a filter that keeps nothing."""
        datasets = tuple(datasets)
        if not datasets:
            raise fail(self.loc, f"workflow {workflow} has no datasets to filter")
        for name, _, loc in self.facets:
            if name not in facets:
                raise fail(loc, f"workflow {workflow} has no facet '{name}'{suggest(name, facets)}")
        wanted = None
        if self.has_ids:
            known = {d.id for d in datasets}
            for ds_id, loc in self.ids:
                if ds_id not in known:
                    raise fail(loc, f"dataset '{ds_id}' is not in workflow {workflow}")
            wanted = {i for i, _ in self.ids}
        kept = tuple(
            d for d in datasets
            if (wanted is None or d.id in wanted) and self._facets_match(d.facet_dict())
        )  # fmt: skip
        if not kept:
            raise fail(
                self.loc,
                f"the dataset filter keeps none of the {len(datasets)} datasets of workflow {workflow}",
            )
        return kept

    def _facets_match(self, facets: dict[str, str]) -> bool:
        return all(
            name in facets and any(fnmatch.fnmatchcase(facets[name], g) for g in globs)
            for name, globs, _ in self.facets
        )
