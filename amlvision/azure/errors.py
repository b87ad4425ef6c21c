"""One error type for every configuration problem found before anything is sent to Azure."""

from __future__ import annotations


class AzureConfigError(ValueError):
    """A run, job or deployment configuration the SDKs (or Azure ML's rules) would reject.

    ``problems`` lists every finding, each naming its file and field, so one run shows them all.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


def raise_if_problems(source: str, problems: list[str]) -> None:
    if problems:
        raise AzureConfigError(source, problems)
