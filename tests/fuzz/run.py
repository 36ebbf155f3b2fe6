"""Run one fuzz target under atheris (libFuzzer, coverage-guided).

    python -m tests.fuzz.run TARGET [libFuzzer options] [CORPUS_DIR ...]
    python -m tests.fuzz.run frames -max_total_time=60 -rss_limit_mb=1024

wsframe's pure-Python modules are instrumented for coverage; the compiled
twins run uninstrumented and are checked against the pure ones. Seeds from
``tests.fuzz.targets.SEEDS`` start an empty corpus folder. On a finding libFuzzer writes
the input to ``crash-*`` (see ``-artifact_prefix``) and exits non-zero; on
success it exits 0 after printing its statistics (``-print_final_stats=1``).
"""
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["wsframe"]):
    from tests.fuzz import targets


def main() -> None:
    name = sys.argv[1]
    target = targets.TARGETS[name]
    args = sys.argv[2:]
    folders = [a for a in args if not a.startswith("-")]
    if not folders:  # no corpus folder given: a fresh one (left for a later run to reuse)
        folders = [tempfile.mkdtemp(prefix=f"wsframe-fuzz-{name}-")]
        args.append(folders[0])
    os.makedirs(folders[0], exist_ok=True)
    if not os.listdir(folders[0]):  # an empty corpus starts from the seeds
        for i, seed in enumerate(targets.SEEDS.get(name, [])):
            with open(os.path.join(folders[0], f"seed{i}"), "wb") as f:
                f.write(seed)

    def one_input(data: bytes) -> None:
        target(data)

    atheris.Setup([sys.argv[0]] + args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
