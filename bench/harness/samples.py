"""Raw samples of a run: one JSON object a line in samples.jsonl, and the run's facts in run.json."""

import json
from pathlib import Path


class Samples:
    """Measurements (kind, labels, value), correctness checks and facts of one run, in a results dir."""

    def __init__(self, directory: Path, records: list[dict] | None = None, run: dict | None = None):
        self.directory = directory
        self.records = records or []
        self.run = run or {}

    @classmethod
    def start(cls, directory: Path, run: dict) -> "Samples":
        """An empty results dir for a new run (the previous samples there are removed)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "samples.jsonl").write_text("")
        samples = cls(directory, run=run)
        samples.save_run()
        return samples

    @classmethod
    def load(cls, directory: Path) -> "Samples":
        lines = (directory / "samples.jsonl").read_text().splitlines()
        run = json.loads((directory / "run.json").read_text())
        return cls(directory, [json.loads(line) for line in lines if line], run)

    def save_run(self) -> None:
        (self.directory / "run.json").write_text(json.dumps(self.run, indent=2) + "\n")

    def add(self, kind: str, value, **labels) -> None:
        """Stores one sample at once (a run that fails half-way keeps what it measured)."""
        record = {"kind": kind, **labels, "value": value}
        self.records.append(record)
        with open(self.directory / "samples.jsonl", "a") as out:
            out.write(json.dumps(record) + "\n")

    def values(self, kind: str, **labels) -> list:
        """Every sample of kind whose labels include the given ones, in the order measured."""
        return [r["value"] for r in self.records if r["kind"] == kind and all(r.get(k) == v for k, v in labels.items())]

    def one(self, kind: str, **labels):
        """The last sample of kind with these labels, or None."""
        found = self.values(kind, **labels)
        return found[-1] if found else None
