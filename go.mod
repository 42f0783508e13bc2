module github.com/fordpass2mqtt/fordpass2mqtt

go 1.26.8

require (
	github.com/gorilla/websocket v1.5.3
	go.uber.org/zap v1.28.0
	golang.org/x/oauth2 v0.38.0
)

require go.uber.org/multierr v1.10.0 // indirect
