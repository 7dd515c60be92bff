"""A small token classifier for the resume NER example: token features and a linear model.

The pipeline, all scikit-learn and the standard library (nothing is downloaded):

1. :func:`tokenize` splits a resume into tokens with character offsets (words with their inner
   punctuation, so ``jordan.lopez@proton.me``, ``535.911.9638``, ``Node.js`` and ``C++`` are one
   token each; any other punctuation mark is a token of its own). On the committed datasets every
   entity boundary falls on a token boundary.
2. :func:`tag_tokens` turns the character-span entities of a record into one tag per token, in the
   ``BIO`` scheme (``B-SKILL``, ``I-SKILL``, ``O``) or the ``IO`` scheme (``I-SKILL``, ``O``).
3. :func:`token_features` describes each token by a dict (the word lower-cased, its shape,
   prefixes and suffixes, digit/title/upper flags, its place on the line, the words and shapes of
   its neighbours in a window, the first word of its line and of the line above); a
   :class:`~sklearn.feature_extraction.DictVectorizer` makes them a sparse matrix, optionally
   without the features seen fewer than ``min_count`` times in training.
4. :class:`TokenTagger` trains an :class:`~sklearn.linear_model.SGDClassifier` one epoch at a
   time with ``partial_fit`` (examples shuffled by a seeded generator each epoch), so a caller can
   score after every epoch.
5. :func:`decode_entities` turns predicted tags back into character spans and :func:`score_entities`
   computes **entity-level** precision, recall and F1: a predicted entity counts only when its
   label, start and end all equal a gold entity's (exact match, as in CoNLL ``seqeval``). The
   macro-F1 is the unweighted mean of the per-type F1 over the entity types.

Everything is deterministic for a given :class:`TaggerConfig` (its ``seed`` included).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import SGDClassifier

from resume_ner.dataset import ENTITY_TYPES

__all__ = [
    "LOSSES",
    "PENALTIES",
    "SCHEMES",
    "EntityScores",
    "PreparedDocs",
    "Span",
    "TaggerConfig",
    "Token",
    "TokenTagger",
    "decode_entities",
    "gold_entities",
    "score_entities",
    "tag_set",
    "tag_tokens",
    "token_features",
    "tokenize",
]

Record = Mapping[str, Any]
Features = dict[str, str | float]

LOSSES: tuple[str, ...] = ("log_loss", "hinge", "modified_huber", "squared_hinge", "perceptron")
"""The ``SGDClassifier`` losses a :class:`TaggerConfig` accepts."""
PENALTIES: tuple[str, ...] = ("l2", "l1", "elasticnet")
"""The ``SGDClassifier`` penalties a :class:`TaggerConfig` accepts."""
SCHEMES: tuple[str, ...] = ("bio", "io")
"""The tagging schemes: ``bio`` (begin/inside/outside) or ``io`` (inside/outside)."""
CLASS_WEIGHTS: tuple[str, ...] = ("none", "balanced")
"""``balanced`` weighs every example by ``n / (n_tags * count(tag))``, as scikit-learn does."""

_TOKEN = re.compile(r"\w+(?:[.@'’\-/&+]\w+)*[+#]*|[^\w\s]")


class Token(NamedTuple):
    """A token: its text and its character offsets ``[start, end)`` in the document."""

    text: str
    start: int
    end: int


class Span(NamedTuple):
    """An entity as a character span ``[start, end)`` with its label."""

    start: int
    end: int
    label: str


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens with character offsets (see the module docstring)."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def tag_set(scheme: str = "bio", labels: Sequence[str] = ENTITY_TYPES) -> list[str]:
    """All tags of ``scheme`` for ``labels``: ``O`` first, then ``B-``/``I-`` per label."""
    _check_choice("scheme", scheme, SCHEMES)
    prefixes = ("B", "I") if scheme == "bio" else ("I",)
    return ["O"] + [f"{p}-{label}" for label in labels for p in prefixes]


def tag_tokens(
    tokens: Sequence[Token], entities: Iterable[Record], scheme: str = "bio"
) -> list[str]:
    """One tag per token from character-span ``entities`` (``{"start", "end", "label"}``).

    A token inside an entity gets ``I-<label>``, or ``B-<label>`` in the ``bio`` scheme when it is
    the first token of the entity; a token that only partly overlaps an entity belongs to it too.
    """
    _check_choice("scheme", scheme, SCHEMES)
    tags = ["O"] * len(tokens)
    starts = [t.start for t in tokens]
    for entity in entities:
        start, end, label = int(entity["start"]), int(entity["end"]), str(entity["label"])
        first = True
        i = max(0, _bisect_right(starts, start) - 1)
        while i < len(tokens) and tokens[i].start < end:
            if tokens[i].end > start:
                tags[i] = f"B-{label}" if first and scheme == "bio" else f"I-{label}"
                first = False
            i += 1
    return tags


def _bisect_right(values: Sequence[int], x: int) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _shape(word: str) -> str:
    """``Xxxxx`` → ``Xx``, ``535.911.9638`` → ``d.d.d``: character classes, runs collapsed."""
    out: list[str] = []
    for ch in word:
        c = "X" if ch.isupper() else "x" if ch.isalpha() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def token_features(
    text: str, tokens: Sequence[Token], window: int = 2, affix: int = 3
) -> list[Features]:
    """A feature dict per token (string values are one-hot encoded by ``DictVectorizer``).

    Args:
        text: The document (for line structure).
        tokens: Its tokens (:func:`tokenize`).
        window: How many neighbouring tokens on each side contribute their lower-cased word and
            shape (``0``: none).
        affix: The longest prefix and suffix used (``0``: none; ``3``: 1 to 3 characters).
    """
    words = [t.text.lower() for t in tokens]
    shapes = [_shape(t.text) for t in tokens]
    # the line of each token, and the first word of every line
    line_of: list[int] = []
    line_heads: list[str] = []
    line = -1
    previous_end = 0
    for i, token in enumerate(tokens):
        if i == 0 or "\n" in text[previous_end : token.start]:
            line += 1
            line_heads.append(words[i])
        line_of.append(line)
        previous_end = token.end
    n = len(tokens)
    features: list[Features] = []
    for i, token in enumerate(tokens):
        word = token.text
        f: Features = {
            "bias": 1.0,
            "w": words[i],
            "shape": shapes[i],
            "len": str(min(len(word), 8)),
            "line_head": line_heads[line_of[i]],
            "prev_line_head": line_heads[line_of[i] - 1] if line_of[i] > 0 else "<doc>",
        }
        for k in range(1, affix + 1):
            if len(word) >= k:
                f[f"pre{k}"] = words[i][:k]
                f[f"suf{k}"] = words[i][-k:]
        if word.isdigit():
            f["is_digit"] = 1.0
        if word.istitle():
            f["is_title"] = 1.0
        if word.isupper():
            f["is_upper"] = 1.0
        if any(ch.isdigit() for ch in word):
            f["has_digit"] = 1.0
        if "@" in word:
            f["has_at"] = 1.0
        if i == 0 or line_of[i - 1] != line_of[i]:
            f["bol"] = 1.0
        if i == n - 1 or line_of[i + 1] != line_of[i]:
            f["eol"] = 1.0
        for k in range(1, window + 1):
            for j, side in ((i - k, "-"), (i + k, "+")):
                if 0 <= j < n:
                    f[f"{side}{k}:w"] = words[j]
                    f[f"{side}{k}:shape"] = shapes[j]
                    if line_of[j] != line_of[i]:
                        f[f"{side}{k}:other_line"] = 1.0
                else:
                    f[f"{side}{k}:w"] = "<pad>"
        features.append(f)
    return features


def gold_entities(record: Record) -> list[Span]:
    """The annotated entities of ``record`` as :class:`Span` s."""
    return [Span(int(e["start"]), int(e["end"]), str(e["label"])) for e in record["entities"]]


def decode_entities(text: str, tokens: Sequence[Token], tags: Sequence[str]) -> list[Span]:
    """Character spans from per-token tags (lenient, as ``seqeval`` without ``strict``).

    ``B-X`` starts an entity; ``I-X`` continues an entity of label ``X`` or starts one; ``O`` ends
    it. An entity never continues across a line break (no annotated entity does).
    """
    spans: list[Span] = []
    current: list[Any] | None = None  # [start, end, label]
    previous_end = 0
    for token, tag in zip(tokens, tags, strict=True):
        newline = "\n" in text[previous_end : token.start]
        previous_end = token.end
        if tag == "O":
            if current is not None:
                spans.append(Span(*current))
                current = None
            continue
        prefix, _, label = tag.partition("-")
        if current is not None and (prefix == "B" or label != current[2] or newline):
            spans.append(Span(*current))
            current = None
        if current is None:
            current = [token.start, token.end, label]
        else:
            current[1] = token.end
    if current is not None:
        spans.append(Span(*current))
    return spans


@dataclass(frozen=True)
class EntityScores:
    """Entity-level scores (exact span and label match).

    Attributes:
        macro_f1: Mean of the per-type F1 over the entity types that occur in the gold or the
            predictions (a type with neither is left out; with none at all the score is ``0``).
        micro_f1: F1 over all entities pooled.
        precision: Per-type precision.
        recall: Per-type recall.
        f1: Per-type F1 (``0`` when a type has no true positive).
        support: Per-type number of gold entities.
        n_predicted: Per-type number of predicted entities.
    """

    macro_f1: float
    micro_f1: float
    precision: dict[str, float]
    recall: dict[str, float]
    f1: dict[str, float]
    support: dict[str, int]
    n_predicted: dict[str, int]


def _f1(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0
    return precision, recall, f1


def score_entities(
    gold: Sequence[Sequence[Span]],
    predicted: Sequence[Sequence[Span]],
    labels: Sequence[str] = ENTITY_TYPES,
) -> EntityScores:
    """Entity-level scores of ``predicted`` against ``gold`` (one list of spans per document)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold documents but {len(predicted)} predicted ones")
    tp = dict.fromkeys(labels, 0)
    n_gold = dict.fromkeys(labels, 0)
    n_pred = dict.fromkeys(labels, 0)
    for gold_doc, pred_doc in zip(gold, predicted, strict=True):
        gold_set = {s for s in gold_doc if s.label in tp}
        pred_set = {s for s in pred_doc if s.label in tp}
        for s in gold_set:
            n_gold[s.label] += 1
        for s in pred_set:
            n_pred[s.label] += 1
        for s in gold_set & pred_set:
            tp[s.label] += 1
    precision: dict[str, float] = {}
    recall: dict[str, float] = {}
    f1: dict[str, float] = {}
    for label in labels:
        precision[label], recall[label], f1[label] = _f1(tp[label], n_pred[label], n_gold[label])
    present = [label for label in labels if n_gold[label] or n_pred[label]]
    macro = float(np.mean([f1[label] for label in present])) if present else 0.0
    micro = _f1(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))[2]
    return EntityScores(macro, micro, precision, recall, f1, n_gold, n_pred)


def _check_choice(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


@dataclass(frozen=True)
class TaggerConfig:
    """The hyperparameters of :class:`TokenTagger` (checked on construction).

    Attributes:
        alpha: ``SGDClassifier`` regularisation strength (> 0).
        loss: ``SGDClassifier`` loss, one of :data:`LOSSES`.
        penalty: ``SGDClassifier`` penalty, one of :data:`PENALTIES`.
        l1_ratio: Mixing of ``l1`` in the ``elasticnet`` penalty, in ``[0, 1]``.
        window: Neighbouring tokens per side in the features, ``0`` to ``5``.
        affix: Longest prefix/suffix in the features, ``0`` to ``6``.
        min_count: Drop the features seen in fewer training tokens than this (``1``: keep all).
        class_weight: ``none`` or ``balanced`` (see :data:`CLASS_WEIGHTS`).
        scheme: ``bio`` or ``io`` (see :data:`SCHEMES`).
        epochs: Passes over the training tokens, ``1`` to ``100``.
        seed: Seeds the model and the per-epoch shuffling.
    """

    alpha: float = 1e-4
    loss: str = "modified_huber"
    penalty: str = "l2"
    l1_ratio: float = 0.15
    window: int = 2
    affix: int = 3
    min_count: int = 1
    class_weight: str = "none"
    scheme: str = "bio"
    epochs: int = 5
    seed: int = 0
    labels: tuple[str, ...] = field(default=ENTITY_TYPES, repr=False)

    def __post_init__(self) -> None:
        """Reject values the model cannot use, naming the hyperparameter."""
        for name in ("window", "affix", "min_count", "epochs", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be an integer; got {value!r}")
        for name, lo, hi in (
            ("window", 0, 5),
            ("affix", 0, 6),
            ("min_count", 1, 1000),
            ("epochs", 1, 100),
        ):
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be between {lo} and {hi}; got {value!r}")
        for name in ("alpha", "l1_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise ValueError(f"{name} must be a number; got {value!r}")
        if not (np.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"alpha must be a finite number > 0; got {self.alpha!r}")
        if not 0.0 <= self.l1_ratio <= 1.0:
            raise ValueError(f"l1_ratio must be between 0 and 1; got {self.l1_ratio!r}")
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("penalty", self.penalty, PENALTIES)
        _check_choice("class_weight", self.class_weight, CLASS_WEIGHTS)
        _check_choice("scheme", self.scheme, SCHEMES)

    def to_dict(self) -> dict[str, Any]:
        """The hyperparameters as a plain dict (without ``labels``)."""
        out = asdict(self)
        out.pop("labels")
        return out


@dataclass(frozen=True)
class PreparedDocs:
    """Documents tokenised and vectorised once by a started tagger (:meth:`TokenTagger.prepare`).

    Attributes:
        records: The documents.
        tokens: Their tokens.
        X: The feature matrix of all their tokens, in order (``None`` without any token).
    """

    records: tuple[Record, ...]
    tokens: tuple[list[Token], ...]
    X: sparse.csr_matrix | None


class TokenTagger:
    """Token features + an ``SGDClassifier`` trained epoch by epoch.

    Use :meth:`fit` for a complete training, or :meth:`start` then :meth:`train_epoch` as many
    times as ``config.epochs`` (scoring in between with :meth:`evaluate`).
    """

    def __init__(self, config: TaggerConfig) -> None:
        """A tagger with hyperparameters ``config`` (untrained)."""
        self.config = config
        self.tags: list[str] = tag_set(config.scheme, config.labels)
        self.vectorizer = DictVectorizer(sparse=True)
        self.classifier = SGDClassifier(
            loss=config.loss,
            penalty=config.penalty,
            alpha=config.alpha,
            l1_ratio=config.l1_ratio,
            random_state=config.seed,
            shuffle=False,  # shuffled here, differently every epoch
        )
        self.epochs_done = 0
        self.train_seconds = 0.0
        self._X: sparse.csr_matrix | None = None
        self._y: np.ndarray | None = None
        self._weights: np.ndarray | None = None
        self._rng = np.random.default_rng(config.seed)

    @property
    def n_features(self) -> int:
        """The number of features the vectorizer kept (0 before :meth:`start`)."""
        return len(getattr(self.vectorizer, "feature_names_", []))

    def _featurize(self, records: Sequence[Record]) -> tuple[list[Features], list[list[Token]]]:
        feats: list[Features] = []
        docs: list[list[Token]] = []
        for record in records:
            tokens = tokenize(str(record["text"]))
            docs.append(tokens)
            feats.extend(
                token_features(str(record["text"]), tokens, self.config.window, self.config.affix)
            )
        return feats, docs

    def start(self, records: Sequence[Record]) -> None:
        """Build the features and the tag targets of the training ``records``."""
        if not records:
            raise ValueError("no training records")
        began = time.perf_counter()
        feats, docs = self._featurize(records)
        targets: list[str] = []
        for record, tokens in zip(records, docs, strict=True):
            targets.extend(tag_tokens(tokens, record["entities"], self.config.scheme))
        X = self.vectorizer.fit_transform(feats).tocsr()
        if self.config.min_count > 1:
            counts = np.asarray((X != 0).sum(axis=0)).ravel()
            support = counts >= self.config.min_count
            self.vectorizer.restrict(support)
            X = X[:, np.flatnonzero(support)]
        index = {tag: i for i, tag in enumerate(self.tags)}
        unknown = sorted({t for t in targets if t not in index})
        if unknown:
            raise ValueError(f"entity labels outside {', '.join(self.config.labels)}: {unknown}")
        y = np.array([index[t] for t in targets], dtype=np.int64)
        weights = np.ones(len(y))
        if self.config.class_weight == "balanced":
            counts = np.bincount(y, minlength=len(self.tags)).astype(float)
            seen = counts > 0
            per_tag = np.zeros(len(self.tags))
            per_tag[seen] = len(y) / (seen.sum() * counts[seen])
            weights = per_tag[y]
        self._X, self._y, self._weights = X, y, weights
        self.train_seconds += time.perf_counter() - began

    def train_epoch(self) -> None:
        """One pass of ``partial_fit`` over the training tokens, in a fresh seeded order."""
        if self._X is None or self._y is None or self._weights is None:
            raise RuntimeError("call start(records) before train_epoch()")
        began = time.perf_counter()
        order = self._rng.permutation(len(self._y))
        self.classifier.partial_fit(
            self._X[order],
            self._y[order],
            classes=np.arange(len(self.tags)),
            sample_weight=self._weights[order],
        )
        self.epochs_done += 1
        self.train_seconds += time.perf_counter() - began

    def fit(self, records: Sequence[Record]) -> TokenTagger:
        """:meth:`start` and ``config.epochs`` epochs; returns ``self``."""
        self.start(records)
        for _ in range(self.config.epochs):
            self.train_epoch()
        return self

    def prepare(self, records: Sequence[Record]) -> PreparedDocs:
        """Tokenise and vectorise ``records`` once, to score them after every epoch cheaply."""
        if self._X is None:
            raise RuntimeError("call start(records) before prepare()")
        feats, docs = self._featurize(records)
        X = self.vectorizer.transform(feats).tocsr() if feats else None
        return PreparedDocs(tuple(records), tuple(docs), X)

    def predict_tags(self, records: Sequence[Record] | PreparedDocs) -> list[list[str]]:
        """The predicted tag of every token, per record."""
        if self.epochs_done == 0:
            raise RuntimeError("the tagger is not trained")
        prepared = records if isinstance(records, PreparedDocs) else self.prepare(records)
        if prepared.X is None:
            return [[] for _ in prepared.records]
        predicted = self.classifier.predict(prepared.X)
        out: list[list[str]] = []
        pos = 0
        for tokens in prepared.tokens:
            out.append([self.tags[int(k)] for k in predicted[pos : pos + len(tokens)]])
            pos += len(tokens)
        return out

    def predict(self, records: Sequence[Record] | PreparedDocs) -> list[list[Span]]:
        """The predicted entities of every record, as character spans."""
        prepared = records if isinstance(records, PreparedDocs) else self.prepare(records)
        return [
            decode_entities(str(record["text"]), tokens, tags)
            for record, tokens, tags in zip(
                prepared.records, prepared.tokens, self.predict_tags(prepared), strict=True
            )
        ]

    def evaluate(self, records: Sequence[Record] | PreparedDocs) -> EntityScores:
        """Entity-level scores on ``records`` (see :func:`score_entities`)."""
        prepared = records if isinstance(records, PreparedDocs) else self.prepare(records)
        return score_entities(
            [gold_entities(r) for r in prepared.records],
            self.predict(prepared),
            self.config.labels,
        )
