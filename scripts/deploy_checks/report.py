"""What a check prints: its notes (each once, in order), then one `ERROR` line per finding."""

import sys


class Report:
    def __init__(self):
        self.notes = []
        self.errors = []

    def note(self, msg):
        self.notes.append(msg)

    def error(self, msg):
        self.errors.append(msg)

    def err(self, build, msg):
        """A finding about one kustomize build."""
        self.errors.append("%s: %s" % (build, msg))

    def print(self, out=sys.stdout):
        for n in dict.fromkeys(self.notes):
            print(n, file=out)
        for e in self.errors:
            print("ERROR " + e, file=out)

    def status(self):
        return 1 if self.errors else 0
