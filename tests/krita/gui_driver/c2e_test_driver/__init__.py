"""Test-only Krita plugin: drives "Colorize from Reference…" through the real GUI, then quits.

Enabled only in the throw-away profile of tests/test_krita_real.py, and idle unless
``C2E_KRITA_DRIVER_OUT`` names the folder for its report. With both documents open it activates
the target (``C2E_KRITA_DRIVER_TARGET``, a file name), finds the action in the menu bar and runs
it three times through the plugin's test hook (dialog accepted with its defaults): colorize, then
``edit_undo``; start, then Cancel in the progress dialog; colorize and undo again. It records the
layers, pixels and progress of each run, writes ``report.json``, closes the documents unmodified
and triggers ``file_quit``. A watchdog quits after a timeout.

With ``C2E_KRITA_DRIVER_SCREENSHOTS`` (a folder) it instead colorizes once for the docs
(scripts/krita-screenshots): it photographs the dialog (``krita-dialog.png``) and, with the new
layer in place, the screen (``krita-result.png``).
"""

from __future__ import annotations

import json
import os
import time
import traceback

from krita import Extension, Krita

try:
    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QApplication, QMdiArea, QPushButton
except ImportError:  # Krita 6
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication, QMdiArea, QPushButton

#: Screenshots keep at most this width (the window is scaled down, smoothly).
SCREENSHOT_WIDTH = 1280

ACTION_ID = "color2embed_colorize"
TICK_MS = 100
WATCHDOG_MS = int(os.environ.get("C2E_KRITA_DRIVER_TIMEOUT_MS", "240000"))
SCREENSHOTS = os.environ.get("C2E_KRITA_DRIVER_SCREENSHOTS", "")
#: The Clean up slider's value (percent) set after the dialog's defaults are noted ("": kept).
CLEAN = os.environ.get("C2E_KRITA_DRIVER_CLEAN", "")
#: The runs: colorize and undo; start and press Cancel at once; colorize again and undo.
RUNS = ("screenshots",) if SCREENSHOTS else tuple(
    os.environ.get("C2E_KRITA_DRIVER_RUNS", "colorize,cancel,colorize").split(","))


def tab_name(title):
    """The file name in a document tab's title: Krita 5.1 shows ``photo.png *`` for a modified
    document, 5.2 ``photo.png (32.0 KiB) [*]``."""
    name = title.strip()
    for mark in ("[*]", "*"):
        name = name[: -len(mark)].rstrip() if name.endswith(mark) else name
    if name.endswith(")") and " (" in name:  # 5.2's file size
        name = name[: name.rindex(" (")]
    return name


class Driver(Extension):
    """A state machine run by a timer on Krita's UI thread."""

    def __init__(self, parent):
        super().__init__(parent)
        self.out = os.environ.get("C2E_KRITA_DRIVER_OUT", "")
        self.target_name = os.environ.get("C2E_KRITA_DRIVER_TARGET", "")
        self.report = {"steps": [], "runs": [], "errors": []}
        self.timer = None
        self.step = self.wait_for_documents
        self.since = self.heartbeat = time.monotonic()
        self.started = False

    def setup(self):
        if self.out:
            Krita.instance().notifier().windowCreated.connect(self.start)

    def createActions(self, window):
        pass

    # -- plumbing -------------------------------------------------------------------------------
    def start(self):
        if self.started:
            return
        self.started = True
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        QTimer.singleShot(WATCHDOG_MS, self.watchdog)

    def trace(self, *what):
        with open(os.path.join(self.out, "trace.log"), "a") as handle:
            handle.write(f"{time.monotonic():.2f} {' '.join(str(w) for w in what)}\n")

    def tick(self):
        try:
            step = self.step
            if step is None:
                return
            if time.monotonic() - self.heartbeat > 5:  # shows, after a failure, that we ticked
                self.heartbeat = time.monotonic()
                self.trace("in", step.__name__)
            self.step = step() or step
            if self.step is not step:
                self.trace("done", step.__name__)
                self.report["steps"].append(step.__name__)
                self.since = time.monotonic()
        except Exception:
            self.trace("error", traceback.format_exc())
            self.report["errors"].append(traceback.format_exc())
            self.finish()

    def waited(self, seconds):
        return time.monotonic() - self.since > seconds

    def watchdog(self):
        if self.step is not None:
            self.report["errors"].append(f"watchdog: stuck in {self.step.__name__}")
            self.finish()

    def write(self, name, data):
        path = os.path.join(self.out, name)
        if isinstance(data, bytes):
            with open(path, "wb") as handle:
                handle.write(data)
            return
        with open(path + ".tmp", "w") as handle:
            json.dump(data, handle, indent=1)
        os.replace(path + ".tmp", path)

    # -- the documents ----------------------------------------------------------------------------
    def target(self):
        for document in Krita.instance().documents():
            if os.path.basename(document.fileName() or "") == self.target_name:
                return document
        return None

    def names(self):
        return [n.name() for n in self.target().rootNode().childNodes()]

    def wait_for_documents(self):
        app = Krita.instance()
        window = app.activeWindow()
        if window is None or len(app.documents()) < 2 or len(window.views()) < 2:
            return None
        if self.target() is None:
            raise RuntimeError(f"no open document is {self.target_name}")
        self.activate_target()
        return self.wait_for_target

    def activate_target(self):
        """Bring the target's tab to the front, as a click on it would."""
        window = Krita.instance().activeWindow()
        area = window.qwindow().findChild(QMdiArea)
        for sub_window in area.subWindowList() if area is not None else []:
            if tab_name(sub_window.windowTitle()) == self.target_name:
                area.setActiveSubWindow(sub_window)
                return
        for view in window.views():  # no tab found: let Krita show the view
            if view.document() == self.target():
                window.showView(view)

    def wait_for_target(self):
        app = Krita.instance()
        if not app.activeDocument() == self.target():
            active = app.activeDocument()
            self.report["active"] = active.fileName() if active is not None else None
            window = app.activeWindow()
            area = window.qwindow().findChild(QMdiArea) if window is not None else None
            self.report["waiting"] = {  # what a stuck run saw
                "tabs": [w.windowTitle() for w in area.subWindowList()] if area else None,
                "views": [os.path.basename(v.document().fileName() or "")
                          for v in window.views()] if window is not None else None,
            }
            if self.waited(1):
                self.activate_target()
                self.since = time.monotonic()
            return None
        document = self.target()
        self.report["documents"] = [os.path.basename(d.fileName()) for d in app.documents()]
        area = app.activeWindow().qwindow().findChild(QMdiArea)
        tabs = area.subWindowList() if area else []
        self.report["tabs"] = [tab_name(sub_window.windowTitle()) for sub_window in tabs]
        self.report["target"] = {"model": document.colorModel(), "depth": document.colorDepth(),
                                 "profile": document.colorProfile()}
        self.report["layers_before"] = self.names()
        source = document.rootNode().childNodes()[0]
        self.source = source
        self.write("source-before.raw", bytes(source.pixelData(0, 0, document.width(),
                                                               document.height())))
        if SCREENSHOTS:  # the whole virtual screen (there is no window manager to maximize)
            screen = QApplication.primaryScreen().geometry()
            Krita.instance().activeWindow().qwindow().setGeometry(screen)
        action, path = self.find_menu_action()
        self.report["menu_path"] = path
        krita_action = app.action(ACTION_ID)
        self.report["shortcut"] = krita_action.shortcut().toString() if krita_action else None
        self.report["tooltip"] = krita_action.toolTip() if krita_action else None
        self.menu_action = action
        import color2embed.extension as plugin  # the installed plugin, already loaded

        self.plugin = plugin
        plugin.TestHooks.accept_dialog = True
        plugin.TestHooks.before_dialog = self.note_dialog
        return self.run_action

    def find_menu_action(self):
        """The action under Tools > Scripts in the menu bar, and the menu titles leading there."""
        menubar = Krita.instance().activeWindow().qwindow().menuBar()
        for top in menubar.actions():
            if top.menu() is None or top.text().replace("&", "") != "Tools":
                continue
            for sub in top.menu().actions():
                if sub.menu() is None or sub.text().replace("&", "") != "Scripts":
                    continue
                for action in sub.menu().actions():
                    if action.objectName() == ACTION_ID:
                        return action, ["Tools", "Scripts", action.text().replace("&", "")]
        raise RuntimeError(f"Tools > Scripts has no {ACTION_ID} action")

    def note_dialog(self, dialog):
        if SCREENSHOTS:  # the dialog with its first preview
            dialog.show()
            started = time.monotonic()
            while time.monotonic() - started < 1 or (
                    dialog.previews_shown < 1 and time.monotonic() - started < 60):
                QApplication.processEvents()
                time.sleep(0.02)
            self.save_picture(dialog.grab(), "krita-dialog.png")
        if self.run.get("mode") == "file":  # as if the user picked "Image file…" and a file
            dialog.choose_reference_file(os.environ["C2E_KRITA_DRIVER_REFERENCE_FILE"])
        if self.run.get("mode") == "preview":
            self.try_the_preview(dialog)
        if self.run.get("mode") == "blend":  # the first document, that file blended in
            dialog.reference.setCurrentIndex(0)
            dialog.choose_blend_file(os.environ["C2E_KRITA_DRIVER_REFERENCE_FILE"])
            dialog.share.setValue(40)
        shown = {
            "reference": dialog.reference.currentText(),
            "references": [dialog.reference.itemText(i) for i in range(dialog.reference.count())],
            "size": dialog.size.currentData(),
            "device": dialog.device.currentData(),
            "strength": dialog.strength.value(),
            "clean": dialog.clean.value(),
            "keep_palette": dialog.keep_palette.isChecked(),
            "layer_source": dialog.layer_source.isChecked(),
            "python": dialog.python.text(),
            "weights": dialog.weights.text(),
            "blend": dialog.blend.currentText(),
            "share": dialog.share.value() if dialog.share.isEnabled() else None,
        }
        self.report.setdefault("dialog", shown)  # the first run's: the defaults
        self.run["dialog"] = shown
        if CLEAN:  # then the clean-up as the test asks (percent), as a user would set it
            dialog.clean.setValue(int(CLEAN))

    # -- the live preview -------------------------------------------------------------------------
    def try_the_preview(self, dialog):
        """As a user would: wait for the first preview, change the reference, the strength
        (once, then in a burst) and the working size, look at the original; record latencies,
        how many previews were computed and the longest the dialog's event loop went without
        running."""
        report = self.run.setdefault("preview", {})
        dialog.show()
        dialog.blend.setCurrentIndex(0)

        def wait_for(count, seconds=60):
            started = last = time.monotonic()
            longest = 0.0
            while dialog.previews_shown < count and time.monotonic() - started < seconds:
                QApplication.processEvents()
                now = time.monotonic()
                longest, last = max(longest, now - last), now
                time.sleep(0.005)
            return {"shown": dialog.previews_shown, "latency": dialog.preview_latency,
                    "longest_event_gap": longest, "status": dialog.preview_status.text()}

        report["first"] = wait_for(1)
        report["after_first"] = self.picture_chroma(dialog)
        dialog.original.setChecked(True)
        QApplication.processEvents()
        report["original"] = self.picture_chroma(dialog)
        dialog.original.setChecked(False)
        QApplication.processEvents()
        dialog.choose_reference_file(os.environ["C2E_KRITA_DRIVER_REFERENCE_FILE"])
        report["reference_changed"] = wait_for(2)
        report["after_reference"] = self.picture_chroma(dialog)
        dialog.strength.setValue(40)
        report["strength_changed"] = wait_for(3)
        report["after_strength"] = self.picture_chroma(dialog)
        computed = dialog.preview.runner.computed
        for value in range(45, 100, 5):  # a slider dragged: one change every 20 ms
            dialog.strength.setValue(value)
            for _ in range(4):
                QApplication.processEvents()
                time.sleep(0.005)
        report["burst"] = wait_for(4)
        report["burst_changes"] = len(range(45, 100, 5))
        report["burst_computed"] = dialog.preview.runner.computed - computed
        report["after_burst"] = self.picture_chroma(dialog)
        dialog.size.setCurrentIndex(dialog.size.findData(512))  # a new working size
        report["size_changed"] = wait_for(5)
        dialog.size.setCurrentIndex(dialog.size.findData(256))
        report["size_back"] = wait_for(6)

    def picture_chroma(self, dialog):
        """The preview picture's mean chroma (max - min of R, G, B) and mean green - red."""
        pixmap = dialog.picture.pixmap()
        if pixmap is None or pixmap.isNull():
            return None
        image = pixmap.toImage()
        chroma, green, count = 0, 0, 0
        for y in range(0, image.height(), 6):
            for x in range(0, image.width(), 6):
                rgb = image.pixel(x, y)
                r, g, b = (rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255
                chroma += max(r, g, b) - min(r, g, b)
                green += g - r
                count += 1
        return {"chroma": chroma / count, "green_minus_red": green / count,
                "size": [image.width(), image.height()]}

    # -- the runs ---------------------------------------------------------------------------------
    def run_action(self):
        mode = RUNS[len(self.report["runs"])]
        self.run = {"mode": mode, "ticks": 0, "progress_seen": False, "longest_tick_gap": 0.0}
        self.last_tick = time.monotonic()
        self.report["runs"].append(self.run)
        self.outcomes_before = len(self.plugin.TestHooks.outcomes)
        self.run_started = time.monotonic()
        self.menu_action.trigger()  # returns once the job runs in the background
        # the progress dialog is up before trigger() returns; a fast worker may finish before
        # the first tick of wait_for_layer, so look now rather than only while waiting
        progress = self.progress_dialog()
        self.run["progress_seen"] = progress is not None
        if mode == "cancel":
            progress.findChild(QPushButton).click()  # the Cancel button
            return self.wait_after_cancel
        return self.wait_for_layer

    def progress_dialog(self):
        for widget in QApplication.topLevelWidgets():
            if widget.objectName() == "color2embed_progress" and widget.isVisible():
                return widget
        return None

    def wait_after_cancel(self):
        if not self.waited(3):  # long enough for a late result to show up, if it could
            return None
        outcomes = self.plugin.TestHooks.outcomes[self.outcomes_before:]
        self.run["outcome"] = dict(outcomes[-1]) if outcomes else None
        self.run["layers"] = self.names()
        self.run["progress_open"] = self.progress_dialog() is not None
        return self.run_action if len(self.report["runs"]) < len(RUNS) else self.quit

    def wait_for_layer(self):
        now = time.monotonic()  # the UI thread keeps ticking while the worker works
        self.run["ticks"] += 1
        self.run["longest_tick_gap"] = max(self.run["longest_tick_gap"], now - self.last_tick)
        self.last_tick = now
        if self.progress_dialog() is not None:
            self.run["progress_seen"] = True
        outcomes = self.plugin.TestHooks.outcomes
        if len(outcomes) == self.outcomes_before:
            return None
        outcome = dict(outcomes[-1])
        self.run["outcome"] = outcome
        self.run["seconds"] = time.monotonic() - self.run_started
        self.run["layers"] = self.names()
        document = self.target()
        self.run["model"] = document.colorModel()
        document.refreshProjection()
        document.waitForDone()
        self.run["active"] = document.activeNode().name() if document.activeNode() else None
        if outcome.get("layer"):
            node = document.nodeByName(outcome["layer"])
            number = len(self.report["runs"])
            size = (0, 0, document.width(), document.height())
            self.write(f"layer-{number}.raw", bytes(node.pixelData(*size)))
            self.write(f"source-after-{number}.raw", bytes(self.source.pixelData(*size)))
        if SCREENSHOTS:
            return self.photograph_result
        Krita.instance().action("edit_undo").trigger()
        return self.wait_for_undo

    def photograph_result(self):
        if not self.waited(3):  # let the canvas and the Layers docker catch up
            return None
        screen = QApplication.primaryScreen()
        self.save_picture(screen.grabWindow(0), "krita-result.png")
        return self.quit

    def save_picture(self, pixmap, name):
        if pixmap.width() > SCREENSHOT_WIDTH:
            pixmap = pixmap.scaledToWidth(SCREENSHOT_WIDTH, 1)  # Qt.SmoothTransformation
        path = os.path.join(SCREENSHOTS, name)
        if not pixmap.save(path + ".tmp.png", "PNG"):
            raise RuntimeError("could not save " + path)
        os.replace(path + ".tmp.png", path)
        self.report.setdefault("screenshots", []).append(path)

    def wait_for_undo(self):
        layers = self.names()
        if layers != self.report["layers_before"] and not self.waited(10):
            return None
        self.run["layers_after_undo"] = layers
        return self.run_action if len(self.report["runs"]) < len(RUNS) else self.quit

    def quit(self):
        for extension in Krita.instance().extensions():
            session = getattr(extension, "session", None)
            if session is not None and session.running:
                self.report["worker_pid"] = session.pid
        self.finish()
        return None

    def finish(self):
        self.step = None
        if self.timer is not None:
            self.timer.stop()
        plugin = getattr(self, "plugin", None)
        if plugin is not None:
            self.report["engine_setups"] = list(plugin.TestHooks.engine_setups)
        try:
            self.write("report.json", self.report)
        finally:
            for document in Krita.instance().documents():
                document.setModified(False)
                document.close()
            Krita.instance().action("file_quit").trigger()


Krita.instance().addExtension(Driver(Krita.instance()))
