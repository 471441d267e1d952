"""Small helpers for .ci/external-checks (standard library only).

    helpers.py wait LOGFILE PID TIMEOUT      -> prints the base URL once the
                                                server's app config answers
    helpers.py fetch URL OUTFILE             -> saves a URL's body
    helpers.py operations OPENAPI_JSON       -> prints the operationIds in it
    helpers.py dom-operations DOM OPENAPI_JSON
                                             -> checks that the Redoc DOM has a
                                                section for every operation
"""

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def get(url, timeout=5.0):
    """(status, body) of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited too.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def wait(logfile, pid, timeout):
    """Reads the bound address from the server's log line
    'allauth-server listening on http://ADDR', then polls the app config."""
    deadline = time.monotonic() + timeout
    base = None
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not alive(pid):
            sys.exit(f"server exited before answering ({last})")
        if base is None:
            try:
                with open(logfile, encoding="utf-8", errors="replace") as f:
                    m = re.search(r"listening on (http://[0-9.:\[\]a-f]+)", f.read())
                if m:
                    base = m.group(1)
            except OSError:
                pass
        if base is not None:
            try:
                status, body = get(base + "/_allauth/app/v1/config", timeout=2)
                if status == 200:
                    print(base)
                    return
                last = f"config answered {status}: {body[:200]!r}"
            except OSError as err:
                last = f"config: {err}"
        time.sleep(0.1)
    sys.exit(f"server did not answer within {timeout}s ({last})")


def fetch(url, out):
    status, body = get(url, timeout=30)
    if status != 200:
        sys.exit(f"GET {url}: {status} {body[:300]!r}")
    with open(out, "wb") as f:
        f.write(body)


def operation_ids(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    ids = []
    for item in doc.get("paths", {}).values():
        for method, op in item.items():
            if method in METHODS:
                ids.append(op.get("operationId") or f"<{method} without operationId>")
    return ids


def dom_operations(dom_path, doc_path):
    """Redoc 2.x renders one section per operation whose id (and
    data-section-id) is 'operation/<operationId>', or
    'tag/<tag>/operation/<operationId>' when the operation is tagged; the side
    menu lists them again as data-item-id. Every operation of the served
    document must have a rendered section."""
    with open(dom_path, encoding="utf-8", errors="replace") as f:
        dom = f.read()
    wanted = operation_ids(doc_path)
    sections = re.findall(r'data-section-id="(?:tag/[^"]*/)?operation/([^"]+)"', dom)
    rendered = {urllib.request.unquote(op) for op in sections}
    menu = re.findall(r'data-item-id="(?:tag/[^"]*/)?operation/([^"]+)"', dom)
    missing = [op for op in wanted if op not in rendered]
    not_in_menu = [op for op in wanted if op not in {urllib.request.unquote(m) for m in menu}]
    print(
        f"   document: {len(wanted)} operations; DOM ({len(dom)} bytes): {len(rendered)} distinct "
        f"operations in {len(sections)} section anchors, {len(menu)} menu entries"
    )
    if not dom.strip() or "<redoc" not in dom.lower() and "redoc-wrap" not in dom:
        sys.exit("the DOM has no Redoc element")
    if re.search(r"Something went wrong|Error downloading", dom):
        m = re.search(r"(Something went wrong|Error downloading)[^<]{0,300}", dom)
        sys.exit(f"Redoc reports an error: {m.group(0) if m else ''}")
    if missing:
        sys.exit(f"{len(missing)} operations have no rendered section: {', '.join(missing[:20])}")
    if not_in_menu:
        sys.exit(f"{len(not_in_menu)} operations are missing from the menu: {', '.join(not_in_menu[:20])}")


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "wait":
        wait(args[0], int(args[1]), float(args[2]))
    elif cmd == "fetch":
        fetch(args[0], args[1])
    elif cmd == "operations":
        print("\n".join(operation_ids(args[0])))
    elif cmd == "dom-operations":
        dom_operations(args[0], args[1])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
