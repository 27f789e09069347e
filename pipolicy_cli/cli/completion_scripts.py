"""Static completion scripts generated from the command tree (`pipolicy completion`).

The scripts in `completions/` are this command's output; a test fails when
they no longer match the CLI. They complete subcommands, options, fixed
choices and file paths without running pipolicy on every key press.
"""

from dataclasses import dataclass, field
from enum import Enum
from pathlib import PurePath

import typer


@dataclass
class OptionSpec:
    names: list[str]
    help: str
    takes_value: bool
    choices: list[str] = field(default_factory=list)
    is_path: bool = False


@dataclass
class Node:
    path: str
    children: list[str]
    options: list[OptionSpec]


def tree(app: typer.Typer) -> list[Node]:
    """Every command path with its subcommands and options, in a stable order."""
    root = typer.main.get_command(app)
    nodes: list[Node] = []

    def walk(command, path: str) -> None:
        context = typer.Context(command)
        names = command.list_commands(context) if hasattr(command, "list_commands") else []
        subcommands = {name: command.get_command(context, name) for name in names}
        visible = {name: sub for name, sub in sorted(subcommands.items()) if not getattr(sub, "hidden", False)}
        options, arguments = [], []
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            choices, is_path = _value_kind(param)
            if param.param_type_name == "argument":
                arguments += choices
                continue
            options.append(
                OptionSpec(
                    names=[*param.opts, *param.secondary_opts],
                    help=(param.help or "").split(". ")[0].rstrip("."),
                    takes_value=not param.is_flag and not param.count,
                    choices=choices,
                    is_path=is_path,
                )
            )
        options.append(OptionSpec(["-h", "--help"], "Show help", False))
        nodes.append(Node(path, [*visible, *arguments], options))
        for name, sub in visible.items():
            walk(sub, f"{path} {name}".strip())

    walk(root, "")
    return nodes


def _value_kind(param) -> tuple[list[str], bool]:
    """Fixed choices and whether the value is a path; typer >= 0.20 describes types itself."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        annotation = descriptor.annotation
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            return [str(member.value) for member in annotation], False
        return [], isinstance(annotation, type) and issubclass(annotation, PurePath)
    kind = param.type
    choices = [str(choice.value if isinstance(choice, Enum) else choice) for choice in getattr(kind, "choices", None) or []]
    return choices, kind.name in ("path", "file", "filename")


def render(shell: str, nodes: list[Node]) -> str:
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](nodes)


def _words(node: Node) -> str:
    return " ".join([*node.children, *(name for option in node.options for name in option.names)])


def _paths_case(nodes: list[Node], indent: str, zsh: bool = False) -> str:
    paths = "|".join(f'"{node.path}"' for node in nodes if node.path)
    pattern = f"({paths})" if zsh else paths
    return f'{indent}case "${{path:+$path }}$word" in\n{indent}    {pattern}) path="${{path:+$path }}$word" ;;\n{indent}esac'


def _value_cases(nodes: list[Node], zsh: bool) -> list[str]:
    """What to offer after an option that takes a value, one case per kind of answer."""
    by_name: dict[str, dict[str, list[str]]] = {}
    for node in nodes:
        for option in node.options:
            if not option.takes_value:
                continue
            if option.choices:
                words = " ".join(option.choices)
                action = f"compadd -- {words}" if zsh else f'COMPREPLY=($(compgen -W "{words}" -- "$cur"))'
            elif option.is_path:
                action = "_files" if zsh else 'COMPREPLY=($(compgen -f -- "$cur"))'
            else:
                action = ":" if zsh else "COMPREPLY=()"
            for name in option.names:
                by_name.setdefault(name, {}).setdefault(action, []).append(node.path)
    patterns: dict[str, list[str]] = {}
    for name, actions in by_name.items():
        for action, node_paths in actions.items():
            targets = ["*"] if len(actions) == 1 else [f'"{path}"' for path in node_paths]
            patterns.setdefault(action, []).extend(f"{target}:{name}" if target == "*" else f'"{target[1:-1]}:{name}"' for target in targets)
    return [
        f"        {'(' if zsh else ''}{'|'.join(found)}) {action}; return ;;"
        for action, found in patterns.items()
    ]


def _bash(nodes: list[Node]) -> str:
    words = "\n".join(f'        "{node.path}") words="{_words(node)}" ;;' for node in nodes)
    values = "\n".join(_value_cases(nodes, zsh=False))
    return f"""# bash completion for pipolicy; generated by `pipolicy completion bash`, do not edit.
# Install: pipolicy completion bash > ~/.local/share/bash-completion/completions/pipolicy
_pipolicy() {{
    local cur prev word path="" words="" i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
{_paths_case(nodes, "        ")}
    done
    case "$path:$prev" in
{values}
    esac
    case "$path" in
{words}
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _pipolicy pipolicy
"""


def _zsh(nodes: list[Node]) -> str:
    words = "\n".join(f'        ("{node.path}") compadd -- {_words(node)} ;;' for node in nodes)
    values = "\n".join(_value_cases(nodes, zsh=True))
    return f"""#compdef pipolicy
# zsh completion for pipolicy; generated by `pipolicy completion zsh`, do not edit.
# Install: pipolicy completion zsh > "${{fpath[1]}}/_pipolicy"
_pipolicy() {{
    local word path="" prev i
    for ((i = 2; i < CURRENT; i++)); do
        word="${{words[i]}}"
{_paths_case(nodes, "        ", zsh=True)}
    done
    prev="${{words[CURRENT-1]}}"
    case "$path:$prev" in
{values}
    esac
    case "$path" in
{words}
    esac
}}
_pipolicy "$@"
"""


def _fish(nodes: list[Node]) -> str:
    quoted_paths = " ".join(f'"{node.path}"' for node in nodes if node.path)
    lines = [
        "# fish completion for pipolicy; generated by `pipolicy completion fish`, do not edit.",
        "# Install: pipolicy completion fish > ~/.config/fish/completions/pipolicy.fish",
        f"set -g __pipolicy_paths {quoted_paths}",
        "function __pipolicy_path",
        '    set -l path ""',
        "    for word in (commandline -opc)[2..-1]",
        '        set -l candidate (string trim -- "$path $word")',
        "        if contains -- $candidate $__pipolicy_paths",
        "            set path $candidate",
        "        end",
        "    end",
        '    echo "$path"',
        "end",
        "complete -c pipolicy -f",
    ]
    for node in nodes:
        condition = f"test (__pipolicy_path) = '{node.path}'"
        if node.children:
            lines.append(f'complete -c pipolicy -n "{condition}" -a "{" ".join(node.children)}"')
        for option in node.options:
            parts = [f'complete -c pipolicy -n "{condition}"']
            for name in option.names:
                parts.append(f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}")
            if option.choices:
                parts.append(f'-x -a "{" ".join(option.choices)}"')
            elif option.is_path:
                parts.append("-r -F")
            elif option.takes_value:
                parts.append("-x")
            if option.help:
                parts.append("-d " + _fish_quote(option.help))
            lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
