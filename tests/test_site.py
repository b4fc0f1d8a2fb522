"""The static site, built from a registry holding real curated datasets, a trained model and two results, and
checked in a real headless browser (Debian chromium driven by Playwright) against a loopback web server.

Screenshots of every page land in tests/artifacts/site/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from servers import free_port, static_http_server
from test_cli import dsb_subset

from hub.baselines import get_baseline
from hub.config import recipes_dir

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts" / "site"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
BASELINE = "phase-as-dapi"  # a trivial method: the in-focus phase plane submitted as the DAPI prediction
PEER, PEER_BENCH = "care", "isl-condition-b/label-free"  # a committed peer record of peers/ (CARE, reproduced)
CURVED = "bbbc039-few-shot-dsb"  # a baseline of model_cards/ with a committed learning curve


def _dsb_mini(cli, data_dir: Path, base: Path) -> Path:
    """Eight real DSB2018 images with their nuclei, imported with the terms and citation of the DSB card."""
    terms = yaml.safe_load((recipes_dir() / "dsb2018-fluo" / "card.yaml").read_text())["terms"]
    card = base / "dsb-mini-card.yaml"
    card.write_text(yaml.safe_dump({"title": "DSB2018 nuclei, eight images", "terms": terms}))
    out = base / "dsb-mini"
    r = cli(
        "datasets",
        "import",
        "kaggle-dsb",
        dsb_subset(data_dir, base, 8),
        "--name",
        "dsb-mini",
        "--out",
        out,
        "--card",
        card,
    )
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def registry(built, data_dir, tmp_path_factory, cli) -> Path:
    """A local registry with two real datasets (label-free tiles with their benchmark, and nuclei with instance
    labels), a small label-free model trained for two steps, its hub-run result, a self-reported baseline and
    the committed peer record of CARE on the same benchmark."""
    from hub.bench import evaluate_model, get_benchmark, score_predictions
    from hub.curate import open_dataset, publish_dataset
    from hub.models import Model, TrainConfig, publish_model, train
    from hub.peers import check_record, get_peer
    from hub.registry import Registry

    base = tmp_path_factory.mktemp("site-registry")
    reg = Registry(base / "registry")
    isl = built("isl-condition-b")
    publish_dataset(reg, isl)
    publish_dataset(reg, _dsb_mini(cli, data_dir, base))
    model_dir = base / "isl-tiny"
    train(
        TrainConfig(
            name="isl-tiny",
            task="label-free",
            dataset=str(isl),
            backbone="test_resnet",
            options={"depth": 3, "decoder_channels": 8},
            patch=64,
            batch_size=2,
            steps_per_epoch=1,
            epochs=1,
            val_batches=1,
            targets=["DAPI"],
        ),
        model_dir,
    )
    publish_model(reg, model_dir)
    publish_model(reg, get_baseline(CURVED).model_dir)  # a baseline with a committed learning curve
    bench = get_benchmark("isl-condition-b/label-free")
    reg.publish_result(evaluate_model(bench, isl, Model.load(model_dir)).model_dump(mode="json"))
    ds = open_dataset(isl)
    phase = ds.card.channel_names.index("phase-z06")
    preds = base / "baseline"
    preds.mkdir()
    for sid in ds.ids(bench.split):
        tifffile.imwrite(preds / f"{sid}.tif", ds.image(sid).read()[phase].astype(np.float32))
    reg.publish_result(score_predictions(bench, isl, preds, model=BASELINE).model_dump(mode="json"))
    peer = get_peer(PEER)
    assert check_record(peer, PEER_BENCH) is not None, f"no committed record of {PEER} on {PEER_BENCH}"
    reg.publish_result(peer.record(PEER_BENCH))
    return base / "registry"


@pytest.fixture(scope="module")
def site(registry, tmp_path_factory) -> Path:
    """The site, built in this process (torch is already loaded) with its own download cache."""
    from hub.site import build_site

    base = tmp_path_factory.mktemp("site")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CELLHUB_CACHE", str(base / "cache"))
        summary = build_site(base / "site", str(registry))
    assert summary["datasets"] == ["dsb-mini", "isl-condition-b"] and summary["models"] == [CURVED, "isl-tiny"]
    assert summary["benchmarks"] == ["isl-condition-b/label-free"]
    assert summary["results"] == 3
    return base / "site"


def _sync_playwright():
    return pytest.importorskip("playwright.sync_api", reason="Playwright for Python (the dev extra)").sync_playwright


def _browser(p):
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run does it)")
    return p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)


def _page_kind(path: str) -> str:
    """home, an index, or the kind of a detail page: dataset, model, benchmark."""
    if path == "index.html":
        return "home"
    section = path.split("/")[0]
    return f"{section}-index" if path.endswith("/index.html") else section[:-1]


def _load_every_image(page) -> list[str]:
    """Scroll each image into view (they load lazily), wait for it, and return the ones that did not render."""
    return page.evaluate("""async () => {
        for (const img of document.images) {
            img.scrollIntoView();
            if (!img.complete) await new Promise(done => { img.onload = img.onerror = done; });
        }
        return Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('src'));
    }""")


def test_every_page_loads_cleanly_in_a_browser(site):
    """Crawl from the home page: no console errors, no failed or off-site requests, every image renders with
    its size and alt text, every page of site.json is reachable; a screenshot of each page is kept."""
    sync_playwright = _sync_playwright()
    expected = set(json.loads((site / "site.json").read_text())["pages"])
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with static_http_server(site) as url, sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems, requests = [], []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
        page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        page.on("request", lambda r: requests.append(r.url))
        todo, seen = ["index.html"], set()
        while todo:
            path = todo.pop(0)
            if path in seen:
                continue
            seen.add(path)
            page.goto(f"{url}/{path}", wait_until="load")
            assert page.title(), path
            broken = _load_every_image(page)
            assert not broken, f"{path}: images that did not render: {broken}"
            for img in page.query_selector_all("img"):
                assert img.get_attribute("width") and img.get_attribute("height"), f"{path}: img without size"
                assert img.get_attribute("alt") is not None, f"{path}: img without alt"
            page.evaluate("window.scrollTo(0, 0)")  # the header is sticky: shoot from the top
            page.screenshot(path=str(ARTIFACTS / f"{path.removesuffix('.html').replace('/', '-')}.png"), full_page=True)
            for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
                href = href.split("#")[0]
                if href.startswith(url + "/") and href.endswith(".html"):
                    todo.append(href[len(url) + 1 :])
        browser.close()
    assert not problems, "\n".join(problems)
    assert seen == expected, f"not reached from the home page: {sorted(expected - seen)}"
    assert all(r.startswith(url + "/") for r in requests), [r for r in requests if not r.startswith(url + "/")]
    kinds = {_page_kind(p) for p in seen}
    assert {"home", "dataset", "model", "benchmark"} <= kinds
    shots = {p.stem for p in ARTIFACTS.glob("*.png")}
    assert {"index", "datasets-isl-condition-b", "models-isl-tiny", "benchmarks-isl-condition-b-label-free"} <= shots
    assert f"models-{CURVED}" in shots


def test_leaderboard_sorts_and_shows_intervals_and_provenance(site, registry):
    from hub.registry import Registry

    sync_playwright = _sync_playwright()

    from hub.peers import get_peer

    title = get_peer(PEER).spec.title
    entries = Registry(registry).results("isl-condition-b/label-free")
    best_first = sorted(entries, key=lambda e: -e["value"])
    shown = {e["model"]: title if e["source"] == "reproduced" else e["model"] for e in entries}
    with static_http_server(site) as url, sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page()
        page.goto(f"{url}/benchmarks/isl-condition-b/label-free.html")
        table = page.locator("table.leaderboard")

        def column(i: int) -> list[str]:
            return table.locator(f"tbody tr td:nth-child({i})").evaluate_all("cells => cells.map(c => c.dataset.value)")

        assert column(2) == [shown[e["model"]] for e in best_first]  # ranked by the primary metric
        first = table.locator("tbody tr").first
        lo, hi = best_first[0]["ci95"]
        assert f"[{lo:.3f}, {hi:.3f}]" in first.inner_text()
        assert first.locator(f"code[title='{best_first[0]['weights_sha256'] or ''}']").count() == (
            1 if best_first[0]["weights_sha256"] else 0
        )
        page.get_by_role("button", name="Model", exact=True).click()
        assert column(2) == sorted(shown.values())
        page.get_by_role("button", name="Model", exact=True).click()
        assert column(2) == sorted(shown.values(), reverse=True)
        table.locator("thead th").nth(2).locator("button").click()
        values = [float(v) for v in column(3)]
        assert values == sorted(values) and len(values) == 3
        assert table.locator("thead th").nth(2).get_attribute("aria-sort") == "ascending"
        record = table.locator("tbody tr").first.locator("a[href*='records/']").get_attribute("href")
        browser.close()
    sha = record.rsplit("/", 1)[-1].removesuffix(".json")
    assert json.loads((site / "benchmarks/isl-condition-b" / record).resolve().read_text())[
        "benchmark"
    ] == "isl-condition-b/label-free" and sha in {e["sha256"] for e in entries}


def test_pages_show_real_registry_content(site, registry):
    """The pull commands name this registry; cards, terms, splits and the training record are on the pages."""
    dataset = (site / "datasets" / "dsb-mini.html").read_text()
    assert f"cellhub datasets pull dsb-mini@0.1.0 --registry {registry}" in dataset
    assert "Caicedo" in dataset and "CC0-1.0" in dataset  # citation and licence
    assert "Object sizes" in dataset and "<svg" in dataset  # the histogram of nucleus areas
    assert len(list((site / "datasets" / "dsb-mini").glob("sample-*.png"))) == 8  # every image, outlined
    isl = (site / "datasets" / "isl-condition-b.html").read_text()
    assert "Christiansen" in isl and "isl-condition-b/label-free" in isl
    model = (site / "models" / "isl-tiny.html").read_text()
    assert f"cellhub models pull isl-tiny@0.1.0 --registry {registry}" in model
    assert "Training record" in model and "DAPI predicted" in model and "DAPI measured" in model
    assert "http://" not in (site / "assets" / "style.css").read_text()  # nothing fetched from elsewhere
    home = (site / "index.html").read_text()
    assert BASELINE in home and "isl-tiny@0.1.0" in home
    board = (site / "benchmarks" / "isl-condition-b" / "label-free.html").read_text()
    assert "per image, then the mean over images" in board  # how the primary metric is computed, said with it


def test_a_baselines_learning_curve_is_drawn_on_its_page_and_for_that_very_model_only(site):
    """The committed curve of the baseline, one point per size and init with its mean over seeds, the zero-shot
    level and the curve's summary; a model of the same name with other weights gets no curve."""
    import xml.etree.ElementTree as ET

    from hub.cards import ModelCard, load_card
    from hub.site.curves import bundled_curve

    base = get_baseline(CURVED)
    curve = json.loads((base.folder / "learning-curve.json").read_text())
    page = (site / "models" / f"{CURVED}.html").read_text()
    assert "Learning curve" in page and f"zero-shot {curve['zero_shot']:.3g}" in page
    svg = ET.fromstring(
        page[
            page.index("<svg", page.index('id="learning-curve"')) : page.index(
                "</svg>", page.index('id="learning-curve"')
            )
            + 6
        ]
    )
    titles = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}title")][1:]  # after the chart's own title
    means = {(init, n): m for init, s in curve["summary"].items() if isinstance(s, dict) for n, m in s["mean"].items()}
    assert len(titles) == len(means)
    for (init, _), m in means.items():
        assert any(t.startswith(f"{init} (") and f": {m:.3g}" in t for t in titles), (init, m, titles)
    card = load_card(ModelCard, base.model_dir / "card.yaml")
    assert bundled_curve(card) == curve
    other = card.model_copy(update={"weights": card.weights.model_copy(update={"sha256": "0" * 64})})
    assert bundled_curve(other) is None


def test_peer_rows_link_their_script_and_the_comparison_sets_hub_against_peer(site, registry):
    """The committed CARE record is a peer row linked to the exact script that made it; benchmarks/peers.html
    sets the benchmark's best hub model against it with the verdict of :func:`hub.bench.compare_benchmark`."""
    from hub.bench import compare_benchmark, get_benchmark
    from hub.config import REPO_ROOT
    from hub.peers import get_peer
    from hub.registry import Registry

    peer = get_peer(PEER)
    board = (site / "benchmarks" / f"{PEER_BENCH}.html").read_text()
    assert f'href="../../{peer.script_path()}"' in board and peer.spec.title in board and "badge peer" in board
    assert (site / peer.script_path()).read_bytes() == (REPO_ROOT / peer.script_path()).read_bytes()
    compared = compare_benchmark(get_benchmark(PEER_BENCH), Registry(registry))
    assert compared["hub"]["model"] == "isl-tiny@0.1.0" and compared["peer"]["model"] == PEER
    page = (site / "benchmarks" / "peers.html").read_text()
    row = page[page.index(f'data-value="{PEER_BENCH}"') :].split("</tr>")[0]
    assert "isl-tiny@0.1.0" in row and compared["peer"]["name"] in row
    assert f"{compared['peer']['value']:.3f}" in row and compared["verdict"] in row
    assert "bccd/detection" not in page  # only the benchmarks the registry holds


def test_serve_command_serves_a_built_site(site, tmp_path):
    from hub.errors import NotFound
    from hub.site import site_server

    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from hub.cli import main; main()", "site", "serve", str(site), "--port", str(port)],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=1) as r:
                    assert r.status == 200 and b"CellHub" in r.read()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)
    with pytest.raises(NotFound, match="not a built site"):
        site_server(tmp_path)


def test_bad_input_is_refused_with_nothing_written(tmp_path, registry, site, cli):
    from hub.errors import BuildError
    from hub.site import build_site

    missing = tmp_path / "no-registry"
    r = cli("site", "build", "--registry", missing, "--out", tmp_path / "out")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert str(missing) in r.stderr and "index.json" in r.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    r = cli("site", "build", "--registry", registry, "--out", taken)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert str(taken) in r.stderr and "--overwrite" in r.stderr
    with pytest.raises(BuildError, match="not a site built by cellhub"):  # not a site: refused even so
        build_site(taken, str(registry), overwrite=True)
    assert [p.name for p in taken.iterdir()] == ["notes.txt"] and not list(tmp_path.glob(".taken*"))


def test_build_command_and_overwrite(tmp_path, registry, monkeypatch, cli):
    """A registry holding only the model builds quickly: the command writes a site, and --overwrite replaces it."""
    from hub.models import publish_model
    from hub.registry import Registry
    from hub.site import build_site

    small = Registry(tmp_path / "small")
    publish_model(small, Path(registry).parent / "isl-tiny")  # the model folder the registry fixture trained
    out = tmp_path / "site"
    monkeypatch.setenv("CELLHUB_CACHE", str(tmp_path / "cache"))
    first = cli("site", "build", "--registry", small.url, "--out", out, "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["models"] == ["isl-tiny"] and summary["datasets"] == [] and summary["pages"] == 6
    (out / "stale.html").write_text("from before")
    again = build_site(out, small.url, overwrite=True)
    assert again["models"] == ["isl-tiny"] and again["built"] >= summary["built"]
    assert not (out / "stale.html").exists() and (out / "models" / "isl-tiny.html").is_file()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staged or old copies left
