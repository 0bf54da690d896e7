// Package pingpb holds the Go code protoc generates from services/proto/proto/ping.proto
// (committed, so building the Go peers needs no protoc). Regenerate with:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
//	go generate ./pingpb
package pingpb

//go:generate protoc -I ../../../services/proto/proto --go_out=. --go_opt=paths=source_relative --go_opt=Mping.proto=tracebridge.local/interop/pingpb --go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mping.proto=tracebridge.local/interop/pingpb ping.proto
