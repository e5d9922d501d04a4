"""A cache folder that jobs of a job array fill and a later reader can trust.

Numbered ``<stem>_NNN.npz`` files that belong to one computation, named by
its fingerprint in ``manifest.json``, and one ``manifest.d/<stem>_NNN.json``
per file with the file's SHA-256, written beside the file (so two jobs never
write the same file). Reading verifies the fingerprint when the folder is
opened, and each file's checksum and arrays when it is read; any problem
names the file or folder and says what to delete.

Used by LiRA's shadows (`audit.lira.ShadowCache`) and by
`SplitTeachers(cache_dir=)`; subclasses name what they hold in the messages.
"""

import hashlib
import json
import os
import zipfile

import numpy as np

from keras_adamixup import _io


class CheckedFolder:
    """A fingerprinted folder of checksummed ``.npz`` files (module docstring).

    Args:
        folder: the cache folder (created).
        fingerprint: a string naming the computation the files belong to.
    """

    MANIFEST = "manifest.json"
    ENTRIES = "manifest.d"
    # what subclasses hold, for file names and messages
    stem = "item"
    label = "cache"  # "The {label} in ..."
    items = "entries"
    belongs_elsewhere = "a different computation"
    needs = "this computation"
    hint = ""  # after "Use another `cache_dir`"
    redo = "it is computed again"
    # the error-table ids the messages start with: a file or manifest that
    # cannot be trusted, a folder of another computation
    error_id = ""
    elsewhere_id = ""

    def __init__(self, folder, fingerprint):
        self.folder = os.fspath(folder)
        os.makedirs(os.path.join(self.folder, self.ENTRIES), exist_ok=True)
        manifest = os.path.join(self.folder, self.MANIFEST)
        if os.path.exists(manifest):
            try:
                with open(manifest, encoding="utf-8") as f:
                    cached = json.load(f)["fingerprint"]
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
                raise ValueError(
                    f"{_lead(self.error_id)}The {self.label} manifest {manifest!r} is not a "
                    "manifest this package "
                    f"wrote ({type(error).__name__}: {error}): delete the cache folder "
                    f"{self.folder!r} (its {self.items} are trained again).") from None
            if cached != fingerprint:
                raise ValueError(
                    f"{_lead(self.elsewhere_id)}The {self.label} in {self.folder!r} belongs to "
                    f"{self.belongs_elsewhere}: its {self.items} would not mean what "
                    f"{self.needs} needs. Use another `cache_dir`{self.hint} or delete it.")
        else:
            _io.write_text(manifest, json.dumps({"fingerprint": fingerprint}))

    def path(self, i):
        return os.path.join(self.folder, f"{self.stem}_{i:03d}.npz")

    def has(self, i):
        return os.path.exists(self.path(i))

    @classmethod
    def save(cls, path, **arrays):
        """Writes one file, then its manifest entry with the file's checksum."""
        with _io.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        folder, name = os.path.split(path)
        entry = os.path.join(folder, cls.ENTRIES, os.path.splitext(name)[0] + ".json")
        _io.write_text(entry, json.dumps({"file": name, "sha256": sha256(path)}))

    def refuse(self, i, problem):
        """The error for file `i`: `problem` says what is wrong with it."""
        return ValueError(
            f"{_lead(self.error_id)}The {self.label} file {self.path(i)!r} {problem}: it "
            "cannot be trusted. "
            f"Delete it ({self.redo}) or the whole cache folder {self.folder!r}.")

    def read(self, i, names):
        """File `i`'s arrays `names` (a dict), verified against its manifest entry."""
        path = self.path(i)
        entry = os.path.join(self.folder, self.ENTRIES, f"{self.stem}_{i:03d}.json")
        try:
            with open(entry, encoding="utf-8") as f:
                expected = json.load(f)["sha256"]
        except FileNotFoundError:
            raise self.refuse(i, "has no checksum in the cache's manifest (written by an "
                                 "older version, or copied in by hand)") from None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise self.refuse(i, f"has an unreadable manifest entry ({entry!r})") from None
        if sha256(path) != expected:
            raise self.refuse(i, "does not match the checksum recorded when it was written "
                                 "(changed or truncated since)")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in names if k not in getattr(data, "files", ())]
                arrays = {} if missing else {k: data[k] for k in names}
        except (ValueError, OSError, EOFError, AttributeError, TypeError,
                zipfile.BadZipFile) as error:
            raise self.refuse(i, f"is not a readable .npz of arrays "
                                 f"({type(error).__name__})") from None
        if missing:
            raise self.refuse(i, f"lacks the array(s) {missing}")
        return arrays


def _lead(error_id):
    """``"E37: "`` for ``"E37"``, nothing for no id."""
    return f"{error_id}: " if error_id else ""


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def canonical(tree):
    """A Keras config with every auto-generated name replaced by its order of appearance.

    Layer names (``dense_3``) depend on how many layers the process built
    before; the recipe does not. Values under a ``"name"`` key are numbered
    in a fixed traversal order and every occurrence of them (also in
    ``inbound_nodes``) is replaced by the number.
    """
    names = {}

    def collect(node):
        if isinstance(node, dict):
            for key in sorted(node):
                if key == "name" and isinstance(node[key], str):
                    names.setdefault(node[key], f"#{len(names)}")
                collect(node[key])
        elif isinstance(node, (list, tuple)):
            for item in node:
                collect(item)

    def rename(node):
        if isinstance(node, dict):
            return {key: rename(node[key]) for key in sorted(node)}
        if isinstance(node, (list, tuple)):
            return [rename(item) for item in node]
        if isinstance(node, str):
            return names.get(node, node)
        return node

    collect(tree)
    return rename(tree)
