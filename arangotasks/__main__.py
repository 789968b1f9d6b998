from arangotasks.cli import main

raise SystemExit(main())
