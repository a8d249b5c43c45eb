"""A small reader of the Prometheus text format (0.0.4), for the metrics tests."""
import re

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def _value(text):
    return float(text)  # also reads +Inf, -Inf and NaN


class Metrics:
    """samples: {(name, frozenset(labels.items())): value}; types: {family: type}."""

    def __init__(self, text):
        self.samples = {}
        self.types = {}
        self.helps = {}
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(" ", 3)
                assert name not in self.types, f"family {name} announced twice"
                self.types[name] = typ
                continue
            if line.startswith("# HELP "):
                _, _, name, help_ = line.split(" ", 3)
                self.helps[name] = help_
                continue
            assert not line.startswith("#"), line
            m = SAMPLE_RE.match(line)
            assert m, f"bad sample line {line!r}"
            labels = {}
            if m.group(3):
                body = m.group(3)
                pairs = LABEL_RE.findall(body)
                rebuilt = ",".join(f'{k}="{v}"' for k, v in pairs)
                assert rebuilt == body, f"bad labels in {line!r}"
                labels = {k: _unescape(v) for k, v in pairs}
            key = (m.group(1), frozenset(labels.items()))
            assert key not in self.samples, f"duplicate series {line!r}"
            self.samples[key] = _value(m.group(4))

    def get(self, name, default=0.0, **labels):
        return self.samples.get((name, frozenset(labels.items())), default)

    def series(self, name):
        """[(labels dict, value)] of one sample name."""
        return [(dict(k[1]), v) for k, v in self.samples.items() if k[0] == name]

    def family_of(self, sample_name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample_name[: -len(suffix)] if sample_name.endswith(suffix) else None
            if base and self.types.get(base) == "histogram":
                return base
        return sample_name

    def check_histograms(self):
        """Every histogram series: buckets cumulative, ending with +Inf == _count."""
        for fam, typ in self.types.items():
            if typ != "histogram":
                continue
            groups = {}
            for labels, v in self.series(fam + "_bucket"):
                le = labels.pop("le")
                groups.setdefault(frozenset(labels.items()), []).append((float(le), v))
            for key, buckets in groups.items():
                buckets.sort()
                values = [v for _, v in buckets]
                assert values == sorted(values), f"{fam} {dict(key)} not cumulative: {buckets}"
                assert buckets[-1][0] == float("inf"), f"{fam} has no +Inf bucket"
                count = self.samples[(fam + "_count", key)]
                assert buckets[-1][1] == count, f"{fam} +Inf {buckets[-1][1]} != count {count}"
                assert (fam + "_sum", key) in self.samples
