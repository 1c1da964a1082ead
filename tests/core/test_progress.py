"""Progress printer: a bar with the time left on a terminal, plain lines in logs, stages named."""
import io

from voca_addon.core.progress import ProgressPrinter, format_duration


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_plain_lines_per_stage_and_tenth():
    out, clock = io.StringIO(), Clock()
    p = ProgressPrinter(out, tty=False, clock=clock)
    p(0.0, "reading audio")
    for k in range(1, 101):
        clock.now += 1.0
        p(k / 100, "speech recognition (DeepSpeech)")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[  0%] reading audio"
    assert lines[1] == "[  1%] speech recognition (DeepSpeech)"       # a new stage prints at once
    assert len(lines) == 2 + 10                                          # then one line per 10 %
    assert lines[6] == "[ 50%] speech recognition (DeepSpeech), about 0:50 left"   # 50 s for 50 %
    assert lines[-1] == "[100%] speech recognition (DeepSpeech)"
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_progress_terminal_bar_redraws_in_place_with_eta():
    out, clock = io.StringIO(), Clock()
    p = ProgressPrinter(out, tty=True, clock=clock, min_interval=0.5)
    p(0.0, "speech features (MFCC)")
    clock.now += 30
    p(0.25, "speech recognition (DeepSpeech)")
    clock.now += 0.1
    p(0.26, "speech recognition (DeepSpeech)")                         # within min_interval: not drawn
    clock.now += 0.5
    p(0.5, "speech recognition (DeepSpeech)")
    p.close()
    text = out.getvalue()
    lines = text.split("\n")
    assert len(lines) == 3 and lines[-1] == ""                           # one finished line per stage
    assert lines[0].startswith("\rspeech features (MFCC)") and "0%" in lines[0]
    assert lines[1].count("\r") == 2 and " 26%" not in lines[1]
    assert "[##########··········]  50%  0:31 left" in lines[1]          # 30.6 s for half → 0:31 left
    assert "[#####···············]  25%  1:30 left" in lines[1]


def test_progress_no_eta_before_enough_is_done():
    out, clock = io.StringIO(), Clock()
    p = ProgressPrinter(out, tty=False, clock=clock)
    clock.now += 0.5
    p(0.5, "x")
    assert out.getvalue() == "[ 50%] x\n"


def test_progress_format_duration():
    assert [format_duration(s) for s in (0, 0.2, 59, 75, 3725)] == ["0:00", "0:01", "0:59", "1:15", "1:02:05"]


def test_progress_isatty_decides_the_form():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    assert ProgressPrinter(Tty()).tty and not ProgressPrinter(io.StringIO()).tty
