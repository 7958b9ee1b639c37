import pytest

from cisr_lib.messages import clean, one_line


def test_escape_codes_and_second_lines_are_removed():
    exc = RuntimeError("\x1b[31mError:\x1b[0m bad thing\nsecond line of advice")
    assert one_line(exc) == "Error: bad thing"
    assert clean("a\x1b[1;33mb\x07c") == "abc"


def test_long_messages_end_at_a_whole_sentence_or_word():
    text = "First sentence is here. " + "word " * 80
    out = one_line(text, max_chars=60)
    assert out == "First sentence is here. ..."
    out = one_line("x" * 10 + " " + "longword " * 40, max_chars=50)
    assert out.endswith(" ...") and len(out) <= 54 and "longwor ..." not in out


def test_empty_message_gives_the_type_name():
    assert one_line(ValueError()) == "ValueError"


def test_command_decorator_gives_one_line_and_an_exit_status(capsys):
    from cisr_lib.messages import command

    @command("tool")
    def main(exc=None):
        if exc:
            raise exc
        return 0

    assert main() == 0
    assert main(FileNotFoundError("no such file: a.png\nsecond line")) == 2
    assert capsys.readouterr().err == "tool: error: no such file: a.png\n"
    assert main(KeyboardInterrupt()) == 130
    assert capsys.readouterr().err == "tool: interrupted\n"
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        main(ZeroDivisionError("x"))
