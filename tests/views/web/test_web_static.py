"""The UI's static files: everything ships in the package, nothing loads from elsewhere,
and no script builds markup from strings."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

STATIC = Path(str(files("tracebraid.views.web").joinpath("static")))
_IMPORT = re.compile(r"""^import .* from "\./([\w-]+\.js)";$""", re.MULTILINE)
_URL = re.compile(r"""https?://[^\s"'`)]+""")
_SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def _scripts() -> list[Path]:
    return sorted((STATIC / "js").glob("*.js"))


def test_every_import_and_preload_names_a_shipped_module() -> None:
    shipped = {p.name for p in _scripts()}
    for script in _scripts():
        for name in _IMPORT.findall(script.read_text()):
            assert name in shipped, f"{script.name} imports {name}, which is not shipped"
    page = (STATIC / "index.html").read_text()
    linked = set(re.findall(r"/ui/static/js/([\w-]+\.js)", page))
    assert linked == shipped, "index.html preloads exactly the shipped modules"
    assert (STATIC / "style.css").exists()
    assert (STATIC / "favicon.svg").exists()


def test_nothing_is_loaded_from_another_origin() -> None:
    for path in [*_scripts(), STATIC / "index.html", STATIC / "style.css", STATIC / "favicon.svg"]:
        urls = set(_URL.findall(path.read_text())) - {_SVG_NAMESPACE}
        assert not urls, f"{path.name} refers to {urls}: the UI must work offline"


def test_no_script_parses_markup() -> None:
    for script in _scripts():
        text = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{script.name} uses {sink}"
