"""Sphinx extension for the course's website (listed in _config.yml under ``sphinx: extra_extensions``).

* Launch buttons (Colab, Binder) only when the repository is known: _config.yml keeps the Binder and
  Colab addresses permanently, and its single setting ``repository: url:`` turns the buttons on.
  While that address is empty the buttons are dropped (the book theme cannot build them without a
  repository).
* No JavaScript errors in the browser: sphinx-thebe registers its inline configuration script
  twice under Jupyter Book (``const THEBE_JS_URL`` declared twice is a SyntaxError), so repeated
  scripts are dropped from each page; and pages get a valid default colour mode, "auto" (the
  pydata theme logs "Got invalid theme mode" as an error otherwise).
"""


def configure(app, config):
    options = config.html_theme_options
    if not str(options.get("repository_url") or "").strip():
        options.pop("launch_buttons", None)


def page_context(app, pagename, templatename, context, doctree):
    if not context.get("default_mode"):
        context["default_mode"] = "auto"  # follow the reader's system setting (light or dark)
    scripts, seen = context.get("script_files"), set()
    if not scripts:
        return
    kept = []
    for script in scripts:
        key = (str(getattr(script, "filename", script) or ""), repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def setup(app):
    app.connect("config-inited", configure)
    app.connect("html-page-context", page_context, priority=999)  # after every extension has added its scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
