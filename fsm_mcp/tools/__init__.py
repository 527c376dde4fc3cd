"""The MCP tools, thin: validate, call the backend through its Protocol, shape the answer.

One module per area; each has a `register(mcp)` that adds its tools.
"""

from typing import Any

from mcp.server.mcpserver import MCPServer

from fsm_mcp.tools import changes, customers, dispatch, duplicates, invoices, jobs
from fsm_mcp.tools._schema import forbid_unknown_arguments, publish_plain_schemas

# What a tool does differently over a vendor, appended to its description so the model reads the truth.
VENDOR_NOTES = {
    "servicetitan": {
        "update_job_status": "Over ServiceTitan, en_route, arrived and working are set by the technician's app; "
                             "this records them as job notes, which get_job reads back.",
        "merge_customers": "Not available over ServiceTitan, whose API cannot merge customers: merge them in "
                           "ServiceTitan, and the next directory sync picks it up.",
        "create_invoice": "Over ServiceTitan this fills the invoice ServiceTitan opened for the job.",
    },
    "fieldpulse": {
        "update_job_status": "Over FieldPulse, arrived and working are both FieldPulse's 'in progress'; every status "
                             "set here is also recorded as a job comment, which get_job reads back.",
        "merge_customers": "Not available over FieldPulse, whose API cannot merge customers: merge them in "
                           "FieldPulse, and the next directory sync picks it up.",
        "list_technicians": "Over FieldPulse, skills come from the fieldpulse skills setting (FieldPulse users carry none).",
        "create_job": "Over FieldPulse, whose jobs have no priority, a priority other than normal leads the job's notes.",
    },
    "housecallpro": {
        "update_job_status": "Over Housecall Pro, whose API cannot start, complete or cancel a job (its apps do), "
                             "completed is refused; en_route, arrived and working are recorded as job "
                             "notes, which get_job reads back, and on_hold takes the job off the schedule (Housecall "
                             "Pro's 'needs scheduling').",
        "cancel_job": "Over Housecall Pro, whose API cannot cancel a job, the confirmed call is refused: cancel it "
                      "in the Housecall Pro app.",
        "merge_customers": "Not available over Housecall Pro, whose API cannot merge customers: merge them in "
                           "Housecall Pro, and the next directory sync picks it up.",
        "create_invoice": "Over Housecall Pro, whose API cannot create invoices, this adds the lines (the discount as "
                          "a discount line) to the job, from which Housecall Pro makes the job's invoice, and answers "
                          "with that invoice under the job's invoice number; the business sends it from the Housecall "
                          "Pro app, which taxes the taxable lines at its own rate (the tax shown is at tax_rate).",
        "create_job": "Over Housecall Pro, the job type must be one of the company's job types; the summary, and a "
                      "priority other than normal, go in the job's first note.",
        "dispatch_technician": "Over Housecall Pro, a job with several visits is dispatched in Housecall Pro, and a "
                               "job with no time yet needs window_start and window_end.",
        "list_technicians": "Over Housecall Pro, a technician's skills are the employee's tags plus the housecallpro "
                            "skills setting; only active employees are listed.",
    },
}


def register(mcp: MCPServer) -> None:
    for area in (customers, duplicates, jobs, dispatch, invoices, changes):
        area.register(mcp)
    publish_plain_schemas(mcp)
    forbid_unknown_arguments(mcp)


def as_served_by(tool: dict[str, Any], backend: str) -> dict[str, Any]:
    """A tool's `tools/list` entry as a caller whose business runs on `backend` reads it: over a vendor every tool
    reaches an outside system (open world), and some work differently there. One server may serve businesses on
    different backends, so this is decided per caller, never written into the registered tools."""
    if backend == "local":
        return tool
    described = dict(tool)
    if isinstance(hints := tool.get("annotations"), dict):
        described["annotations"] = {**hints, "openWorldHint": True}
    if note := VENDOR_NOTES.get(backend, {}).get(str(tool.get("name"))):
        described["description"] = f"{tool.get('description') or ''} {note}".strip()
    return described
