package doctor

// JSON report (--json), schema 1. Field names are stable; new fields may
// be added, none is renamed or removed without bumping "schema".
//
//	{
//	  "schema": 1,
//	  "verdict": "OK" | "PROBLEMS",      // PROBLEMS when any check failed (exit 3)
//	  "blocking": ["<check>: <reason>"],  // one per failed check
//	  "host": "...", "instanceId": "...",
//	  "generatedAt": "RFC 3339", "offline": false, "durationMs": 812,
//	  "counts": {"ok": 9, "warn": 2, "fail": 1, "skip": 3},
//	  "checks": [{
//	    "name": "sessions.dir",           // stable identifier; --only takes prefixes
//	    "title": "...", "status": "ok" | "warn" | "fail" | "skip",
//	    "summary": "one line",
//	    "evidence": [{"key": "sessions_writable", "value": "YES"}],
//	    "blocking": "why it fails ('' unless status is fail)",
//	    "notes": ["..."],
//	    "fixes": [{"summary": "...", "commands": ["sudo ..."], "auto": true}],
//	    "durationMs": 3
//	  }]
//	}
