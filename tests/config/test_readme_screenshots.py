"""The README's pictures exist, in English and in Portuguese (Brazil), and `make
screenshots` takes both sets."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"


def readme_images() -> set[str]:
    text = (ROOT / "README.md").read_text()
    return set(re.findall(r"\(docs/screenshots/([^)]+\.png)\)", text)) | set(
        re.findall(r'src="docs/screenshots/([^"]+\.png)"', text)
    )


def test_every_picture_the_readme_shows_exists():
    images = readme_images()
    assert images
    assert {name for name in images if not (SHOTS / name).is_file()} == set()


def test_every_english_picture_has_its_portuguese_one_in_the_readme():
    english = {path.name for path in SHOTS.glob("*.png")}
    assert len(english) >= 15
    portuguese = {path.name for path in (SHOTS / "pt-br").glob("*.png")}
    assert english == portuguese
    images = readme_images()
    assert english <= images
    assert {f"pt-br/{name}" for name in english} <= images


def test_make_screenshots_takes_both_languages():
    script = (ROOT / "scripts" / "screenshots.py").read_text()
    assert re.search(r'"pt-br": \("pt-BR", OUT / "pt-br"\)', script)
    assert "scripts/screenshots.py" in (ROOT / "Makefile").read_text()
