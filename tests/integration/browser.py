"""A headless Chromium driven through chromedriver, and a small page object for the
dashboard (ui/): elements found by their labels and accessible names, waits on what a
test needs, the console and the network as the browser saw them."""
import json

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1280, 900


def start_chrome():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    # browser: the console; performance: the DevTools network events (every request's
    # URL and headers, as sent).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def xpath_literal(s):
    if "'" not in s:
        return f"'{s}'"
    if '"' not in s:
        return f'"{s}"'
    return "concat('" + s.replace("'", "', \"'\", '") + "')"


class Page:
    """The dashboard of one server in the shared browser."""

    def __init__(self, driver, server):
        self.d = driver
        self.server = server
        self.console = []     # every console entry read so far
        self.requests = []    # every request sent so far: {"url", "method", "headers"}
        self.allowed = []     # console messages a test expects (exact text)
        self.drain()
        self.console.clear()
        self.requests.clear()

    # -- loading and waiting ---------------------------------------------------------
    def open(self, fragment=""):
        self.d.get(self.server.url + "/ui/" + fragment)
        # The app has started once /health answered and it wrote the server line.
        self.wait(lambda: self.d.find_element(By.ID, "server-info").text, what="app start")
        return self

    def wait(self, condition, timeout=10, what="condition"):
        """Waits until condition() is truthy (elements may be replaced meanwhile)."""
        return WebDriverWait(self.d, timeout, poll_frequency=0.05,
                             ignored_exceptions=(NoSuchElementException,
                                                 StaleElementReferenceException)
                             ).until(lambda _d: condition(), message=f"waiting for {what}")

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    # -- finding things as a user does -----------------------------------------------
    def labelled(self, text):
        """The control whose <label> reads exactly `text`."""
        label = self.d.find_element(By.XPATH, f"//label[normalize-space()={xpath_literal(text)}]")
        return self.d.find_element(By.ID, label.get_attribute("for"))

    def button(self, name):
        """The visible button named `name`."""
        found = [b for b in self.d.find_elements(
                     By.XPATH, f"//button[normalize-space()={xpath_literal(name)}]")
                 if b.is_displayed()]
        if len(found) != 1:
            raise NoSuchElementException(f"{len(found)} visible buttons named {name!r}")
        return found[0]

    def row(self, job_id):
        """The list row of a job: the <tr> of the link whose text is the job id."""
        link = self.d.find_element(
            By.XPATH, f"//tbody[@id='jobs-body']//a[normalize-space()={xpath_literal(job_id)}]")
        return link.find_element(By.XPATH, "./ancestor::tr")

    def row_status(self, job_id):
        return self.row(job_id).find_element(By.CSS_SELECTOR, ".status-cell").text

    def list_ids(self):
        return [a.text for a in self.d.find_elements(By.CSS_SELECTOR, "#jobs-body td.job a")]

    def text(self, element_id):
        return self.d.find_element(By.ID, element_id).text

    def events(self):
        """The job view's event list, one string per event."""
        return [li.text for li in self.d.find_elements(By.CSS_SELECTOR, "#job-events li")]

    def progress(self):
        return float(self.d.find_element(By.ID, "job-progress").get_attribute("value"))

    # -- what the browser saw --------------------------------------------------------
    def drain(self):
        """Moves new console entries and network requests into self.console/requests."""
        self.console.extend(self.d.get_log("browser"))
        for entry in self.d.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg["method"] == "Network.requestWillBeSent":
                req = msg["params"]["request"]
                self.requests.append({"url": req["url"], "method": req["method"],
                                      "headers": req.get("headers", {})})
        return self

    def allow_console(self, message):
        self.allowed.append(message)

    def console_errors(self):
        """SEVERE console entries other than the ones the test said it expects (each
        allowed message excuses one entry)."""
        self.drain()
        allowed = list(self.allowed)
        errors = []
        for e in self.console:
            if e["level"] != "SEVERE":
                continue
            if e["message"] in allowed:
                allowed.remove(e["message"])
            else:
                errors.append(e)
        return errors

    def api_requests(self):
        """Requests the page made to the server's API (not its own files)."""
        self.drain()
        base = self.server.url
        return [r for r in self.requests
                if r["url"].startswith(base) and not r["url"].startswith(base + "/ui/")]
