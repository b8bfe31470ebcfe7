"""`make up` / `make down`: the three UIs answer on loopback, the Airflow login works, Ray's job API wants
its token; a person's round trip through the UIs in a real browser (trigger pretrain from Airflow's form,
find and compare the runs in MLflow); and down stops them. One stack for the module (it takes ~40 s to start).

The browser is Debian's Chromium driven by Playwright's Python client (the Makefile installs both). Chromium
156 hangs on screenshots when given a `--headless` argument, or when a test waits for "networkidle" (both
UIs keep connections open): it is launched with Playwright's `headless=True`, and the test waits for
elements. Each step leaves a screenshot under .state/screenshots/, a failing one FAILED-<step>.png.
"""

import contextlib
import json
import os
import re
import shutil
import socket
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from stack import services as stack
from common.paths import PROJECT_ROOT, state_dir

pytestmark = pytest.mark.integration

AIRFLOW = f"http://127.0.0.1:{stack.PORTS['airflow']}"
MLFLOW = f"http://127.0.0.1:{stack.PORTS['mlflow']}"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; `playwright install` would download a browser of its own
SCREENSHOTS = PROJECT_ROOT / ".state" / "screenshots"  # the project's .state/, kept after the test session


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3):
            return True
    except OSError:
        return False


def status_of(url: str, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def airflow_password() -> str:
    return json.loads((state_dir() / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())["admin"]


def airflow_api(method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    """One call to Airflow's REST API (`POST /auth/token` first, for the Bearer token)."""
    request = urllib.request.Request(f"{AIRFLOW}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def airflow_token() -> str:
    return airflow_api("POST", "/auth/token", {"username": "admin", "password": airflow_password()})["access_token"]


def wait_for_dags(token: str, names: set[str], timeout: float = 60) -> set[str]:
    """The DAG ids Airflow lists once `names` are among them (the dag-processor parses dags/ after start)."""
    deadline, dags = time.monotonic() + timeout, set()
    while time.monotonic() < deadline:
        dags = {d["dag_id"] for d in airflow_api("GET", "/api/v2/dags", token=token)["dags"]}
        if names <= dags:
            break
        time.sleep(2)
    return dags


@pytest.fixture(scope="module")
def running_stack():
    busy = [name for name, port in stack.PORTS.items() if port_in_use(port)]
    if busy:
        pytest.skip(f"ports of {busy} are taken (is a `make up` stack running?)")
    # corpus -> pretrain chained through the tokens asset (orchestration/settings.py); sft stays paused, so
    # the chain stops after pretraining
    previous = os.environ.get("LLADA_CHAIN_ON_ASSETS")
    os.environ["LLADA_CHAIN_ON_ASSETS"] = "true"
    try:
        assert stack.up() == 0
        yield
    finally:
        stack.down()  # nothing left to stop once test_down_stops_everything has run
        if previous is None:
            os.environ.pop("LLADA_CHAIN_ON_ASSETS", None)
        else:
            os.environ["LLADA_CHAIN_ON_ASSETS"] = previous


def test_services_answer_on_loopback(running_stack):
    # Ray's job API takes the token of the 0600 file under .state/, and nothing without it
    token_file = state_dir() / "ray_auth_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    for path in ("api/version", "api/jobs/"):
        url = f"http://127.0.0.1:{stack.PORTS['ray']}/{path}"
        assert status_of(url) == 401
        assert status_of(url, {"Authorization": f"Bearer {token_file.read_text().strip()}"}) == 200
    assert answers(f"{MLFLOW}/health")
    assert answers(f"{AIRFLOW}/api/v2/monitor/health")
    assert {"corpus_build", "pretrain", "sft"} <= wait_for_dags(airflow_token(), {"corpus_build", "pretrain", "sft"})


# --- the UIs in a browser -------------------------------------------------------------------------------

STEPS_IN_FORM, STEPS_BY_DEFAULT = 12, 100
"""The trigger form's steps, changed from the default, which the asset-triggered run keeps."""

CHAIN_CORPUS = {  # one demo file (800 documents), the quality filters off: a build of about a minute
    "corpus_name": "chain", "corpus.inputs": [str(PROJECT_ROOT / "data" / "demo" / "corpus" / "part-00003.jsonl.gz")],
    "corpus.languages": [], "corpus.language_threshold": 0, "corpus.gopher_quality": False,
    "corpus.gopher_repetition": False, "corpus.c4": False, "corpus.fineweb": False,
    "tokenizer.vocab_size": 512, "tokens.seq_len": 32, "tokens.validation_fraction": 0.1,
}


def dag_runs(token: str, dag_id: str) -> list[dict]:
    return airflow_api("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after", token=token)["dag_runs"]


@pytest.fixture(scope="module")
def chained_corpus(running_stack, tmp_path_factory) -> dict:
    """One corpus_build run triggered through the REST API on the stack's scheduler; its tokens asset event
    starts a pretrain run by itself (chain_on_assets). Returns the build's work_dir, corpus name and version,
    and that pretrain run."""
    from formats.corpus_versions import resolve

    work = tmp_path_factory.mktemp("chain")
    token = airflow_token()
    assert {"corpus_build", "pretrain"} <= wait_for_dags(token, {"corpus_build", "pretrain"})
    for dag_id in ("corpus_build", "pretrain"):  # new DAGs start paused; sft stays so
        airflow_api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, token)
    build = airflow_api("POST", "/api/v2/dags/corpus_build/dagRuns",
                        {"logical_date": None, "conf": {"work_dir": str(work), **CHAIN_CORPUS}}, token)["dag_run_id"]
    wait_for_success(token, build, dag_id="corpus_build", timeout=420)
    version, _ = resolve(work, CHAIN_CORPUS["corpus_name"])
    deadline, chained = time.monotonic() + 120, []
    while time.monotonic() < deadline and not chained:  # the scheduler turns the asset event into a run
        chained = [run for run in dag_runs(token, "pretrain") if run["run_type"] == "asset_triggered"]
        time.sleep(2)
    assert len(chained) == 1, f"no pretrain run was triggered by the tokens asset of {build}"
    wait_for_success(token, chained[0]["dag_run_id"], timeout=300)
    return {"work_dir": str(work), "corpus_name": CHAIN_CORPUS["corpus_name"], "version": version,
            "build": build, "pretrain": chained[0]["dag_run_id"]}


def test_a_corpus_build_triggers_pretrain_through_its_tokens_asset(chained_corpus):
    """corpus_build -> tokens asset event -> pretrain, on the scheduler: the pretraining read the version the
    build sealed, in the build's work_dir (named by the event), and recorded it."""
    from formats.corpus_versions import LATEST, resolve

    work = Path(chained_corpus["work_dir"])
    version, folder = resolve(work, "chain")
    assert (version, folder) == (chained_corpus["version"], resolve(work, "chain", LATEST)[1])
    config = json.loads((work / "pretrain" / "config.json").read_text())
    assert config["corpus"] == f"chain/{version}" and config["tokens_dir"] == str(folder / "tokens")
    assert config["steps"] == STEPS_BY_DEFAULT  # the DAG's defaults: nobody filled a form
    events = airflow_api("GET", "/api/v2/assets/events?order_by=-timestamp", token=airflow_token())["asset_events"]
    tokens = next(event for event in events if event["uri"].endswith("/tokens"))
    assert (tokens["extra"]["corpus_name"], tokens["extra"]["corpus_version"]) == ("chain", version)
    assert tokens["extra"]["work_dir"] == str(work) and tokens["extra"]["path"] == str(folder / "tokens")


def wait_for_success(token: str, run_id: str, *, dag_id: str = "pretrain", timeout: float = 240) -> None:
    """Poll a DAG run until it succeeds; when it fails or times out, say so with its task logs' end."""
    path, state = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}", "unknown"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and state != "failed":
        state = airflow_api("GET", path, token=token)["state"]
        if state == "success":
            return
        time.sleep(3)
    logs = sorted((state_dir() / "airflow" / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}").glob("**/*.log"),
                  key=lambda log: log.stat().st_mtime)
    records = [json.loads(line) for log in logs for line in log.read_text().splitlines() if line.startswith("{")]
    events = [" ".join([r.get("event", ""), *(f"{e['exc_type']}: {e['exc_value']}" for e in r.get("error_detail", []))]) for r in records]
    ended = "failed" if state == "failed" else f"still {state} after {timeout:.0f} s"
    raise AssertionError(f"{dag_id} run {run_id} {ended}; the end of its task log "
                         f"({logs[-1] if logs else 'none yet'}):\n" + "\n".join(events[-30:]))


class Steps:
    """Each step of the test leaves a screenshot named after it; a failing step leaves FAILED-<step>.png."""

    def __init__(self, page):
        self.page, self.count = page, 0
        shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # only this run's pictures
        SCREENSHOTS.mkdir(parents=True)

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.count += 1
        label, started = f"{self.count:02d}-{name}", time.monotonic()
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):  # the failure, not a screenshot's, is the news
                self.page.screenshot(path=SCREENSHOTS / f"FAILED-{label}.png", timeout=10_000)
            raise
        self.page.screenshot(path=SCREENSHOTS / f"{label}.png", timeout=10_000)
        print(f"[browser] {label}: {time.monotonic() - started:.1f} s", flush=True)


@pytest.fixture
def page():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def test_trigger_pretrain_in_airflow_then_compare_its_runs_in_mlflow(chained_corpus, page):
    """A person's round trip: pretrain triggered from Airflow's form on the chained build's latest corpus
    version, with steps changed, then that run found in MLflow and compared with the asset-triggered one."""
    from playwright.sync_api import expect

    step = Steps(page)
    # the corpus to read (its version left at latest); resume=never: the asset-triggered run's checkpoint
    # is in the same output_dir, and this run is to start afresh, not continue it
    form_params = {"work_dir": chained_corpus["work_dir"], "corpus_name": chained_corpus["corpus_name"], "resume": "never"}
    token = airflow_token()

    with step("airflow-login"):
        page.goto(f"{AIRFLOW}/dags/pretrain")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(airflow_password())
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="pretrain", exact=True).wait_for()

    with step("trigger-form"):
        page.get_by_role("button", name="Trigger Dag").click()
        form = page.get_by_role("dialog")
        expect(form.get_by_role("heading", name="Trigger Dag - pretrain")).to_be_visible()

        def field(name: str):
            """A Param's row in the form: its label, then its input and description."""
            return form.get_by_role("group").filter(has_text=re.compile(rf"^{name}\b"))

        # Airflow's text inputs are not tied to their labels (no accessible name): found by the row's label.
        for name, value in form_params.items():
            field(name).get_by_role("textbox").fill(value)
        form.get_by_role("spinbutton", name="steps", exact=True).fill(str(STEPS_IN_FORM))
        form.get_by_role("spinbutton", name="log_every", exact=True).fill("2")  # a loss curve of several points
        form.get_by_role("spinbutton", name="val_sequences", exact=True).fill("32")
        form.get_by_role("spinbutton", name="steps", exact=True).scroll_into_view_if_needed()  # for the screenshot

    with step("dropdowns"):
        # Params with a JSON-schema enum are dropdowns of exactly their values, the default selected
        for name, options in (("model", ["tiny", "llada_1b", "llada_8b"]), ("zero_stage", ["0", "1", "2", "3"]),
                              ("precision", ["fp32", "bf16"])):
            form.get_by_role("combobox", name=name, exact=True).click()
            expect(page.get_by_role("listbox").get_by_role("option")).to_have_text(options)
            expect(page.get_by_role("option", selected=True)).to_have_text(options[0])
            page.get_by_role("option", selected=True).click()  # keeps the default and closes the list
            expect(page.get_by_role("listbox")).to_have_count(0)
        expect(field("lr_schedule_unit").get_by_role("combobox")).to_have_count(1)
        form.get_by_role("combobox", name="precision", exact=True).click()  # open, for the picture

    with step("triggered"):
        page.get_by_role("option", selected=True).click()
        form.get_by_role("button", name="Trigger", exact=True).click()
        page.wait_for_url(re.compile(r"/dags/pretrain/runs/[^/]+$"))
        run_id = urllib.parse.unquote(page.url.rsplit("/", 1)[1])

    with step("run-succeeded"):
        wait_for_success(token, run_id)
        page.reload()
        expect(page.get_by_text("Success", exact=True).first).to_be_visible()

    with step("mlflow-runs"):
        # the link `make up` and the demo print: MLflow 3.17 opens it on the runs table, whereas a plain
        # experiment link opens on its GenAI pages in a browser that never chose "Model training"
        from mlflow import MlflowClient

        from common.tracking import ui_link

        experiment_id = MlflowClient(tracking_uri=MLFLOW).get_experiment_by_name("pretrain").experiment_id
        page.goto(ui_link(MLFLOW, experiment_id))
        page.get_by_role("button", name="Close", exact=True).click()  # the assistant's side panel, a third of the page
        search = page.get_by_role("combobox", name=re.compile(r"metrics\.rmse"))  # the search box, by its example
        search.fill(f'params.steps = "{STEPS_IN_FORM}"')
        search.press("Enter")
        # the job's run is a child of the DAG run's parent run: open the parent's row (its +)
        grid = page.get_by_role("grid")
        parents = grid.get_by_role("row").filter(has=page.get_by_role("link", name=re.compile(r"^pretrain · (manual|asset_triggered) ")))
        run_name = re.compile(r"^pretrain tiny .* steps ")  # the job's run: "pretrain tiny 1x zero0 fp32 12 steps lr ..."
        children = grid.get_by_role("link", name=run_name)
        expect(parents).to_have_count(1)
        parents.get_by_role("button").first.click()
        expect(children).to_have_count(1)
        expect(children).to_have_text(re.compile(rf" {STEPS_IN_FORM} steps "))

    with step("mlflow-run-params"):
        children.click()
        expect(page.get_by_role("row", name=f"steps {STEPS_IN_FORM}", exact=True)).to_be_visible()
        # latest, resolved when the task started: the run records the version itself
        expect(page.get_by_role("row", name=f"corpus chain/{chained_corpus['version']}", exact=True)).to_be_visible()

    with step("mlflow-compare"):
        page.go_back()
        expect(parents).to_have_count(1)
        expect(children).to_have_count(1)
        parents.get_by_role("button").first.click()  # closed again: the table keeps rows open across pages
        expect(children).to_have_count(0)
        # the two jobs' runs, under their parents: the ones that read the chained corpus (the store may hold others)
        search.fill(f"params.corpus = 'chain/{chained_corpus['version']}'")
        search.press("Enter")
        expect(parents).to_have_count(2)
        for i in range(2):
            parents.nth(i).get_by_role("button").first.click()
        expect(children).to_have_count(2)
        child_rows = grid.get_by_role("row").filter(has=page.get_by_role("link", name=run_name))
        for i in range(2):
            child_rows.nth(i).get_by_role("checkbox").check()
        page.get_by_role("button", name="Compare").click()
        expect(page.get_by_role("heading", name="Comparing 2 Runs from 1 Experiment")).to_be_visible()
        steps_row = page.get_by_role("row", name=re.compile(r"^steps \d+ \d+$"))
        expect(steps_row).to_have_text(re.compile(rf"{STEPS_BY_DEFAULT}.*{STEPS_IN_FORM}|{STEPS_IN_FORM}.*{STEPS_BY_DEFAULT}"))
        steps_row.scroll_into_view_if_needed()

    with step("mlflow-loss-chart"):
        page.get_by_role("link", name="loss", exact=True).click()
        expect(page.get_by_role("heading", name="loss", level=4)).to_be_visible()  # the chart's title
        for steps in (STEPS_IN_FORM, STEPS_BY_DEFAULT):  # each run a curve in the legend, and a row of its values
            expect(page.get_by_text(re.compile(rf"^pretrain tiny .* {steps} steps .*\(loss\)$"))).to_be_visible()
            expect(page.get_by_role("row", name=re.compile(rf"^pretrain tiny .* {steps} steps .* \(step={steps}\)"))).to_be_visible()


def test_down_stops_everything(running_stack):
    assert stack.down() == 0
    for name, port in stack.PORTS.items():
        assert not port_in_use(port), f"{name} still listens on {port}"
