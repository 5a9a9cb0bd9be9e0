import sys; from kvmnet.cli import main; sys.exit(main())
