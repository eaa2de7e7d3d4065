"""Rewrite imports and paths from the flat chalicelib/ and worker/ to the layered ones (docs/layout.md).

The move itself (issue 16 item 8) ran this with ``--move``. A branch made before it can run
``python scripts/relayout.py FILE...`` (or no arguments: every tracked file) after rebasing, to bring its
own new code over: dotted and slashed module paths are mapped, ``from chalicelib import a, b`` lines are
split by new package. It is idempotent. Check ``worker.builder`` / ``worker.runner`` afterwards: where
``worker`` is a Worker instance, not the package, the attribute must stay as it was.
Remove this script once no branch from before the move is left.
"""

import re
import subprocess
import sys
from pathlib import Path

# old module (dotted, under its root) -> new dotted path
CHALICE = {
    "bodies": "api.request_body",
    "multipart": "api.multipart",
    "validation": "api.validation",
    "http_errors": "api.error_mapping",
    "jobviews": "api.job_views",
    "submit": "api.submit",
    "static_ui": "api.static_ui",
    "authn": "api.authn",
    "requestlog": "api.request_log",
    "engine_fields": "api.engine_fields",
    "jobstore": "stores.jobs",
    "logstore": "stores.logs",
    "queue": "stores.queue",
    "contexts": "stores.contexts",
    "sealing": "stores.sealing",
    "aws": "stores.aws",
    "dynamo": "stores.dynamo",
    "apikeys": "stores.apikeys",
    "history": "stores.history",
    "quotas": "stores.quotas",
    "jobs": "domain.jobs",
    "settings": "domain.settings",
    "errors": "domain.errors",
    "reference": "domain.image_ref",
    "patterns": "domain.patterns",
    "archives": "domain.archive_format",
    "registryhosts": "domain.registry_hosts",
    "buildoptions": "domain.build_options",
}
WORKER = {
    m: "build." + m for m in "builder buildkit engines buildplan dockerfile_features images targetlock limits".split()
}
WORKER.update({m: "job." + m for m in "runner control heartbeat loop metrics spot".split()})
WORKER.update({m: "context." + m for m in "archive tarstream".split()})
# identifier kept by an alias when the new last part would collide
ALIAS = {"jobstore", "logstore"}


def full_map():
    m = {}
    for old, new in CHALICE.items():
        m[f"chalicelib.{old}"] = f"chalicelib.{new}"
    for old, new in WORKER.items():
        m[f"worker.{old}"] = f"worker.{new}"
    m["chalicelib.resources"] = "devstack.resources"
    m["devstack.faults"] = "tests.support.faults"
    m["worker.logs"] = "worker.logging_setup"  # issue 16 item 7: not to be confused with chalicelib.stores.logs
    return m


MAP = full_map()
AMBIGUOUS = {"worker.builder", "worker.runner"}


def do_moves():
    for pkg, doc in (
        (
            "chalicelib/api",
            "The HTTP edge: request bodies, validation, error mapping, the routes' services. Used by app.py only.",
        ),
        (
            "chalicelib/stores",
            "Storage and its AWS clients: jobs, logs, queue, contexts, sealing, keys, quotas. Used by the API and the worker.",
        ),
        (
            "chalicelib/domain",
            "The model and its rules: jobs and phases, settings, errors, image references, patterns. Imports nothing above it.",
        ),
        (
            "worker/build",
            "Building and pushing an image: engines, the build plan, Docker and BuildKit, image names, host limits.",
        ),
        (
            "worker/job",
            "Running jobs: the poll loop, one delivery's runner, heartbeat, abort control, metrics, spot drain.",
        ),
        (
            "worker/context",
            "Build contexts: opening untrusted archives with bounds and sanitising them into a safe tar.",
        ),
        ("tests/support", None),
    ):
        Path(pkg).mkdir(parents=True, exist_ok=True)
        init = Path(pkg) / "__init__.py"
        if not init.exists():
            init.write_text(f'"""{doc}"""\n' if doc else '"""Helpers shared by the tests."""\n')
            subprocess.check_call(["git", "add", str(init)])
    for old, new in MAP.items():
        src = old.replace(".", "/") + ".py"
        dst = new.replace(".", "/") + ".py"
        subprocess.check_call(["git", "mv", src, dst])


FROM_PKG = re.compile(
    r"^(?P<ind>[ \t]*)from (?P<root>chalicelib|worker|devstack) import (?P<names>[^(\n#]+?)(?P<cmt>\s*#.*)?$", re.M
)


def rewrite_from_pkg(text):
    renames = {}

    def repl(m):
        root, ind = m["root"], m["ind"]
        names = [n.strip() for n in m["names"].split(",") if n.strip()]
        groups = {}
        for n in names:
            base, _, alias = n.partition(" as ")
            base = base.strip()
            key = f"{root}.{base}"
            if key in MAP:
                new = MAP[key]
                pkg, last = new.rsplit(".", 1)
                if alias:
                    item = f"{last} as {alias.strip()}"
                elif last == base:
                    item = last
                elif base in ALIAS:
                    item = f"{last} as {base}"
                else:
                    item = last
                    renames[base] = last
                groups.setdefault(pkg, []).append(item)
            else:
                groups.setdefault(root, []).append(n)
        lines = []
        first = True
        for pkg in sorted(groups):
            line = f"{ind}from {pkg} import {', '.join(groups[pkg])}"
            if first and m["cmt"]:
                line += m["cmt"]
            first = False
            lines.append(line)
        return "\n".join(lines)

    text = FROM_PKG.sub(repl, text)
    for old, new in renames.items():
        if re.search(rf"(?<![\w.]){new}\b", text.replace(f"import {new}", "")):
            print(f"  !! collision {old}->{new}", file=sys.stderr)
        text = re.sub(rf"(?<![\w.\"'/]){old}\.(?=[A-Za-z_])", f"{new}.", text)
        text = re.sub(rf"(?<![\w.\"'/]){old}\b(?=[,)\]])", new, text)  # monkeypatch.setattr(bodies, ...) / lists
    return text


DOTTED = re.compile(r"(?<![\w.])(" + "|".join(re.escape(k) for k in sorted(MAP, key=len, reverse=True)) + r")\b")
PATHS = {k.replace(".", "/") + ".py": v.replace(".", "/") + ".py" for k, v in MAP.items()}
PATHRE = re.compile(r"(?<![\w/])(" + "|".join(re.escape(k) for k in sorted(PATHS, key=len, reverse=True)) + r")")


def rewrite(path):
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, IsADirectoryError):
        return
    new = text
    if path.suffix == ".py":
        new = rewrite_from_pkg(new)
    module_use = bool(re.search(r"^\s*import worker\.(builder|runner)\b", text, re.M))

    def dotted(m):
        # ``worker.builder`` / ``worker.runner`` are also attributes of a Worker instance named ``worker``:
        # in code, only an import line (or a file that imports the module itself) means the package
        if path.suffix == ".py" and m[1] in AMBIGUOUS and not module_use:
            line = m.string[m.string.rfind("\n", 0, m.start()) + 1 : m.start()]
            if not re.match(r"\s*(from|import)\s", line) and not re.search(r"[`~\"']|:(mod|class|func|meth):|#", line):
                return m[0]
        return MAP[m[1]]

    new = DOTTED.sub(dotted, new)
    new = PATHRE.sub(lambda m: PATHS[m[1]], new)
    if new != text:
        path.write_text(new, encoding="utf-8")
        print("rewrote", path)


if __name__ == "__main__":
    if "--move" in sys.argv:
        do_moves()
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    files = args or subprocess.check_output(["git", "ls-files"], text=True).split()
    for f in files:
        p = Path(f)
        if (
            p.is_file()
            and p.suffix
            in {
                ".py",
                ".md",
                ".sh",
                ".yaml",
                ".yml",
                ".json",
                ".toml",
                ".txt",
                ".service",
                ".cfg",
                ".ini",
                ".js",
                ".html",
                "",
            }
            or f == "Makefile"
        ):
            rewrite(p)
