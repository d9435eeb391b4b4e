"""
Checks that need the whole workflow, run after the models have validated each field.

They are collected, never raised one by one, so an author sees the unknown dependency, the cycle and
the missing tool of one file in the same report. Nothing here imports Airflow; the only code that
is imported is what the workflow's ``tools:`` and ``output_schema:`` name, and only once the module is
known to be allowed (``allowed_modules``, see :mod:`.code_refs`), to prove it is what it claims to be.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from airflow_agent_provider._suggest import did_you_mean
from airflow_agent_provider.definitions.code_refs import tool_problem
from airflow_agent_provider.definitions.errors import Problem
from airflow_agent_provider.definitions.models import (
    AgentDefaults,
    AgentSpec,
    Workflow,
    qualified_id,
    resolve_dependency,
)
from airflow_agent_provider.definitions.output_schemas import output_schema_import_problem
from airflow_agent_provider.definitions.templates import analyse_template
from airflow_agent_provider.definitions.yaml_loader import FieldPath, format_path

if TYPE_CHECKING:
    from airflow_agent_provider.definitions.expressions import Expression

LineOf = Callable[[FieldPath], int | None]

# ``results.name`` / ``results['Module.name']`` / ``results["name"]`` inside a Jinja prompt.
_RESULT_REFS = re.compile(r"""\bresults\s*(?:\.\s*([A-Za-z0-9_]+)|\[\s*['"]([A-Za-z0-9_.-]+)['"]\s*\])""")
# ``params.name`` / ``params['name']`` inside a Jinja prompt.
_PARAM_REFS = re.compile(r"""\bparams\s*(?:\.\s*([A-Za-z0-9_]+)|\[\s*['"]([A-Za-z0-9_]+)['"]\s*\])""")
# Prompt names that only have a value for some agents: name -> (field that provides it, what it is).
_PROMPT_NAMES_NEEDING = {
    "item": ("for_each", "the current for_each item"),
    "last": ("repeat_until", "the previous answer"),
}
# The agent fields Airflow renders as Jinja templates (LLMAgentOperator.template_fields).
TEMPLATED_FIELDS = ("prompt", "system_prompt", "model", "connection")


def check_workflow(
    workflow: Workflow, line_of: LineOf | None = None, allowed_modules: Iterable[str] | None = None
) -> list[Problem]:
    """
    Every whole-workflow problem of ``workflow``; an empty list means it is usable.

    :param allowed_modules: module prefixes tools and output schemas may come from. None reads
        ``[agent_provider] allowed_tool_modules`` (:mod:`airflow_agent_provider.config`), and only when
        the workflow names code at all.
    """
    checker = _Checker(workflow, line_of or (lambda path: None), allowed_modules)
    checker.run()
    return checker.problems


class _Checker:
    def __init__(
        self, workflow: Workflow, line_of: LineOf, allowed_modules: Iterable[str] | None = None
    ) -> None:
        self.workflow = workflow
        self.line_of = line_of
        self.problems: list[Problem] = []
        self.paths: dict[str, FieldPath] = {}  # qualified id -> path of the (first) agent with that id
        self._allowed: tuple[str, ...] | None = None if allowed_modules is None else tuple(allowed_modules)
        self._allowed_error: str | None = None

    def allowed_modules(self) -> tuple[str, ...] | None:
        """The allow-list, read from the configuration on first use; None when the setting is invalid."""
        if self._allowed is None and self._allowed_error is None:
            from airflow_agent_provider.config import ProviderConfigError, allowed_tool_modules

            try:
                self._allowed = allowed_tool_modules()
            except ProviderConfigError as exc:
                self._allowed_error = str(exc)
        return self._allowed

    def add(self, path: FieldPath, message: str) -> None:
        self.problems.append(Problem(format_path(path), message, self.line_of(path)))

    def run(self) -> None:
        self.check_agent_names()
        self.check_models()
        self.check_dependencies()
        self.check_cycles()
        self.check_tools()
        self.check_allow_list()
        self.check_prompts()
        self.check_expressions()
        self.check_repeat()
        self.check_execution()
        self.check_output_schemas()
        self.check_params()
        self.check_triggers()

    def agents(self) -> Iterator[tuple[str, FieldPath, AgentSpec]]:
        """``(module_name, path of the agent, agent)`` for every agent, in file order."""
        for module_name, module in self.workflow.modules.items():
            for index, agent in enumerate(module.agents):
                yield module_name, ("modules", module_name, "agents", index), agent

    def check_agent_names(self) -> None:
        for module_name, path, agent in self.agents():
            qid = qualified_id(module_name, agent.name)
            if qid in self.paths:
                first = format_path(self.paths[qid])
                self.add(
                    (*path, "name"),
                    f"duplicate agent name {agent.name!r} in module {module_name} (also {first})",
                )
            else:
                self.paths[qid] = path

    def check_models(self) -> None:
        defaults = self.workflow.defaults
        for _, path, agent in self.agents():
            if agent.model is not None:
                continue
            hint = "set 'model' on the agent or in defaults"
            if defaults.model is not None and agent.provider != defaults.provider:
                hint = (
                    f"defaults.model {defaults.model!r} is for provider {defaults.provider}, "
                    f"so this {agent.provider} agent must set its own 'model'"
                )
            self.add((*path, "model"), f"no model for this agent: {hint}")

    def check_dependencies(self) -> None:
        for module_name, path, agent in self.agents():
            own = qualified_id(module_name, agent.name)
            seen: set[str] = set()
            for index, dependency in enumerate(agent.dependencies):
                dep_path = (*path, "dependencies", index)
                target = resolve_dependency(module_name, dependency)
                if target == own:
                    self.add(dep_path, f"agent {own} depends on itself")
                elif target in seen:
                    self.add(dep_path, f"dependency {dependency!r} is listed twice")
                elif target not in self.paths:
                    self.add(dep_path, self.unknown_dependency(dependency, target))
                seen.add(target)

    def unknown_dependency(self, dependency: str, target: str) -> str:
        module_name, _, agent_name = target.partition(".")
        if module_name not in self.workflow.modules:
            where = f"there is no module {module_name!r} (modules: {', '.join(self.workflow.modules)})"
        else:
            where = f"module {module_name} has no agent {agent_name!r}"
        message = f"unknown dependency {dependency!r}: {where}"
        return message + did_you_mean(target, self.paths)

    def check_cycles(self) -> None:
        graph: dict[str, list[str]] = {}
        for module_name, _, agent in self.agents():
            own = qualified_id(module_name, agent.name)
            targets = (resolve_dependency(module_name, dep) for dep in agent.dependencies)
            graph.setdefault(own, []).extend(t for t in targets if t in self.paths and t != own)
        reported: set[frozenset[str]] = set()
        for cycle in _find_cycles(graph):
            key = frozenset(cycle)
            if key in reported:
                continue
            reported.add(key)
            shown = " -> ".join([*cycle, cycle[0]])
            self.add(
                (*self.paths[cycle[0]], "dependencies"),
                f"dependency cycle: {shown} (each agent depends on the next; a DAG cannot have cycles)",
            )

    def check_tools(self) -> None:
        allowed = self.workflow.tools
        for _, path, agent in self.agents():
            for index, tool in enumerate(agent.tools):
                if tool in allowed:
                    continue
                message = f"tool {tool!r} is not in the workflow's tools allow-list"
                message += did_you_mean(tool, allowed)
                message += f" (allowed: {', '.join(allowed) or 'none; add a top-level tools: mapping'})"
                self.add((*path, "tools", index), message)

    def check_allow_list(self) -> None:
        for name, dotted in self.workflow.tools.items():
            allowed = self.allowed_modules()
            reason = self._allowed_error if allowed is None else tool_problem(dotted, allowed)
            if reason:
                self.add(("tools", name), reason)

    def check_prompts(self) -> None:
        # A template inherited from defaults: is reported once, at defaults.<field>.
        from_defaults = self.check_default_templates(self.workflow.defaults)
        for module_name, path, agent in self.agents():
            for field in TEMPLATED_FIELDS:
                template = getattr(agent, field)
                if not template:
                    continue
                names = self.check_template((*path, field), field, template, from_defaults)
                if names is not None and field in ("prompt", "system_prompt"):
                    self.check_prompt_names(path, field, agent, names)
            self.check_result_references(module_name, path, agent.prompt, agent.dependencies)
            self.check_param_references((*path, "prompt"), "prompt", _regex_refs(_PARAM_REFS, agent.prompt))

    def check_default_templates(self, defaults: AgentDefaults) -> set[tuple[str, str]]:
        checked: set[tuple[str, str]] = set()
        for field in TEMPLATED_FIELDS:
            template = getattr(defaults, field, None)
            if template and field in defaults.model_fields_set:
                self.check_template(("defaults", field), field, template, set())
                checked.add((field, template))
        return checked

    def check_template(
        self, path: FieldPath, field: str, template: str, already: set[tuple[str, str]]
    ) -> frozenset[str] | None:
        """Report the template's problems (unless ``already`` reported); its context names, None if unparsable."""
        names, problems = analyse_template(template, field)
        if (field, template) not in already:
            for message in problems:
                self.add(path, message)
        return names

    def check_prompt_names(
        self, path: FieldPath, field: str, agent: AgentSpec, names: frozenset[str]
    ) -> None:
        """``item`` and ``last`` only have a value for agents with ``for_each`` / ``repeat_until``."""
        for name, (needed, what) in _PROMPT_NAMES_NEEDING.items():
            if name in names and getattr(agent, needed) is None:
                self.add(
                    (*path, field), f"{field} uses {{{{ {name} }}}} ({what}) but the agent has no {needed}"
                )

    def check_result_references(
        self, module_name: str, path: FieldPath, prompt: str, dependencies: list[str]
    ) -> None:
        refs = [(ref, attribute) for ref, attribute in _regex_refs(_RESULT_REFS, prompt)]
        self.report_results_refs(module_name, (*path, "prompt"), "prompt", refs, dependencies)

    def report_results_refs(
        self,
        module_name: str,
        path: FieldPath,
        field: str,
        refs: list[tuple[str, bool]],
        dependencies: list[str],
    ) -> None:
        """``results.<ref>`` must name a dependency: results of other agents are not pulled."""
        upstream = {resolve_dependency(module_name, dep) for dep in dependencies}
        plain = {qid.partition(".")[2] for qid in upstream}
        for ref, attribute in refs:
            if ref in upstream or ref in plain:
                continue
            self.add(
                path,
                f"{field} uses results{'.' + ref if attribute else f'[{ref!r}]'} but {ref!r} is not one of "
                f"this agent's dependencies ({', '.join(sorted(upstream)) or 'none'})",
            )

    def check_param_references(self, path: FieldPath, field: str, refs: list[tuple[str, bool]]) -> None:
        declared = self.workflow.params
        for ref, _ in refs:
            if ref in declared:
                continue
            message = f"{field} uses params.{ref} but the workflow declares no param {ref!r}"
            message += did_you_mean(ref, declared)
            message += f" (params: {', '.join(declared) or 'none; add a top-level params: mapping'})"
            self.add(path, message)

    def check_expressions(self) -> None:
        """Names in condition / for_each / repeat_until refer to dependencies and declared params."""
        for module_name, path, agent in self.agents():
            compiled = {
                "condition": agent.condition_expression(),
                "for_each": agent.for_each_expression(),
                "repeat_until": agent.repeat_until_expression(),
            }
            for field, expression in compiled.items():
                if expression is not None:
                    self.check_expression(module_name, (*path, field), field, expression, agent)

    def check_expression(
        self, module_name: str, path: FieldPath, field: str, expression: Expression, agent: AgentSpec
    ) -> None:
        if "results" in expression.dynamic:
            self.add(
                path,
                f"{field} must read upstream results as results.<agent> or results['Module.agent'] with a "
                "literal name, so that the dependency can be checked",
            )
        refs = [(ref, "." not in ref) for ref in sorted(expression.keys.get("results", ()))]
        self.report_results_refs(module_name, path, field, refs, agent.dependencies)
        params = [(ref, True) for ref in sorted(expression.keys.get("params", ()))]
        self.check_param_references(path, field, params)
        if "item" in expression.names and agent.for_each is None:
            self.add(path, f"{field} uses item but the agent has no for_each")

    def check_repeat(self) -> None:
        for _, path, agent in self.agents():
            if agent.repeat_until is None and "max_iterations" in agent.model_fields_set:
                self.add((*path, "max_iterations"), "max_iterations only applies together with repeat_until")

    def check_execution(self) -> None:
        """``execution: triggerer`` never reaches a worker, and tools run on a worker."""
        for _, path, agent in self.agents():
            if agent.execution == "triggerer" and agent.tools:
                self.add(
                    (*path, "execution"),
                    f"execution: triggerer cannot run tools (tools run on a worker; this agent uses "
                    f"{', '.join(agent.tools)}); use execution: deferred or auto",
                )

    def check_output_schemas(self) -> None:
        for _, path, agent in self.agents():
            if isinstance(agent.output_schema, str):
                allowed = self.allowed_modules()
                reason = (
                    self._allowed_error
                    if allowed is None
                    else output_schema_import_problem(agent.output_schema, allowed)
                )
                if reason:
                    self.add((*path, "output_schema"), reason)

    def check_params(self) -> None:
        """A run nobody triggers by hand (scheduled or asset-triggered) cannot ask for a value."""
        unattended = self.workflow.schedule is not None or bool(self.workflow.triggered_by)
        if not unattended:
            return
        how = "is scheduled" if self.workflow.schedule is not None else "is started by triggered_by"
        for name, param in self.workflow.params.items():
            if not param.has_default:
                self.add(
                    ("params", name),
                    f"param {name!r} needs a default: the workflow {how}, so no one fills it in",
                )

    def check_triggers(self) -> None:
        workflow = self.workflow
        if workflow.triggered_by and workflow.schedule is not None:
            self.add(
                ("schedule",),
                f"schedule must be null when triggered_by is set: the workflow runs when "
                f"{', '.join(workflow.triggered_by)} finish{'es' if len(workflow.triggered_by) == 1 else ''}, "
                f"got schedule {workflow.schedule!r}",
            )
        seen: set[str] = set()
        for index, name in enumerate(workflow.triggered_by):
            if name == workflow.name:
                self.add(("triggered_by", index), f"workflow {name!r} cannot be triggered by itself")
            elif name in seen:
                self.add(("triggered_by", index), f"workflow {name!r} is listed twice")
            seen.add(name)


def _regex_refs(pattern: re.Pattern[str], text: str) -> list[tuple[str, bool]]:
    """``(key, written with a dot)`` for every match of a ``name.key`` / ``name['key']`` pattern."""
    return [(match.group(1) or match.group(2), bool(match.group(1))) for match in pattern.finditer(text)]


def _find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Elementary cycles found by depth-first search, each rotated to start at its first node in file order."""
    order = {node: index for index, node in enumerate(graph)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in graph.get(node, ()):
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :]
                start = min(range(len(cycle)), key=lambda i: order.get(cycle[i], 0))
                cycles.append(cycle[start:] + cycle[:start])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
    return cycles
