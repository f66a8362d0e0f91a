from cvtasks.cli import main

raise SystemExit(main())
