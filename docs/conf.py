"""Sphinx configuration for the syncws documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` from the repository
root. The package is imported from the source tree, so no installation is needed; without the
compiled ``syncws._mask_cffi`` module, ``syncws.protocol.mask`` uses its pure-Python fallback,
which is enough for autodoc.
"""

from __future__ import annotations

import enum
import os
import sys
from typing import Protocol

# Import syncws from this checkout, ahead of any installed copy.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import syncws

# -- Project information ---------------------------------------------------------------------

project = "syncws"
author = "syncws maintainers"
copyright = "syncws maintainers"
release = syncws.__version__
version = ".".join(release.split(".")[:2])

# -- General configuration -------------------------------------------------------------------

# No intersphinx: the build must work without network access.
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build"]
root_doc = "index"
language = "en"

# -- autodoc ---------------------------------------------------------------------------------

autodoc_member_order = "bysource"
# Types stay in signatures, so every parameter shows its type whether or not the docstring
# describes it ("description" would drop the types of undocumented parameters or add a field
# for each). Long signatures are wrapped one parameter per line.
autodoc_typehints = "signature"
python_maximum_signature_line_length = 100
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True

# -- napoleon (Google style only) ------------------------------------------------------------

napoleon_google_docstring = True
napoleon_numpy_docstring = False
# "Attributes:" sections become :ivar: fields rather than ".. attribute::" directives, so an
# attribute listed in a class docstring never clashes with one autodoc documents on its own
# (a duplicate object description is a warning).
napoleon_use_ivar = True
napoleon_use_rtype = False
napoleon_attr_annotations = True

# -- HTML output -----------------------------------------------------------------------------

# furo (the ``docs`` extra): a sidebar that lists the whole table of contents, from the root
# toctree in index.rst, and a light and a dark mode.
html_theme = "furo"
html_title = f"syncws {release}"


# -- Hooks -----------------------------------------------------------------------------------


def _keep_enum_members(app, what, name, obj, skip, options):
    """Document every member of an enum, not only those with a ``#:`` comment."""
    if what == "class" and isinstance(obj, enum.Enum):
        return False
    return None


def _no_inline_attribute_type(app, what, name, obj, options, lines):
    """Stop napoleon from reading "X: Y" on the first line of an attribute docstring as a type.

    napoleon treats the first line of an attribute, data or property docstring as
    ``type: description``, so ``#: never on the wire: the close frame had no code`` would render
    as "Type: never on the wire". syncws gives types as annotations, never that way. Running
    before napoleon (priority 500), this puts an empty RST comment first: napoleon takes it as
    the inline line, finds no colon, and passes the real text through untouched.
    """
    if what in ("attribute", "data", "property") and any(line.strip() for line in lines):
        lines[:0] = ["..", ""]


def _no_protocol_signature(app, what, name, obj, options, signature, return_annotation):
    """Hide the ``(*args, **kwargs)`` that :class:`typing.Protocol` classes get as signature.

    The extension interfaces are protocols: users implement them, they never instantiate them.
    """
    if what == "class" and signature == "(*args, **kwargs)" and Protocol in obj.__mro__:
        return "", return_annotation
    return None


#: Names exported from :mod:`syncws` but documented (indexed) where they are defined, once:
#: a reference to ``syncws.Request`` resolves to ``syncws.protocol.http11.Request``.
_REEXPORTED = {
    f"syncws.{name}": f"syncws.protocol.http11.{name}"
    for name in ("Headers", "Request", "Response")
}


def _resolve_reexported(app, env, node, contnode):
    """Resolve a reference to a re-exported name to where the name is documented."""
    target = _REEXPORTED.get(node.get("reftarget"))
    if node.get("refdomain") != "py" or target is None:
        return None
    node["reftarget"] = target
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
    )


def setup(app):
    app.connect("missing-reference", _resolve_reexported)
    app.connect("autodoc-skip-member", _keep_enum_members)
    app.connect("autodoc-process-docstring", _no_inline_attribute_type, priority=400)
    app.connect("autodoc-process-signature", _no_protocol_signature)
