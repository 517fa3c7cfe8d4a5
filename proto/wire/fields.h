// Field numbers of proto/schema/pyrewind/v1/trace.proto for the hand-written encoder.
// proto/wire/fields_test.cpp checks every constant against the protoc-generated descriptors.
#pragma once

#include <cstdint>

namespace pyrewind::wire::fields {

namespace PacketBatch { constexpr uint32_t kPacket = 1; }

namespace Packet {
constexpr uint32_t kStringDef = 1, kCodeDef = 2, kThreadStart = 3, kThreadEnd = 4, kEvent = 5,
                   kLoss = 6, kAgentStatus = 7, kSample = 8;
}
namespace StringDef { constexpr uint32_t kId = 1, kText = 2; }
namespace CodeDef {
constexpr uint32_t kId = 1, kFileNameId = 2, kQualifiedNameId = 3, kFirstLine = 4,
                   kLocalNameIds = 5, kModuleLevel = 6, kNative = 7;
}
namespace ThreadStart { constexpr uint32_t kThread = 1, kNativeId = 2, kName = 3, kIdent = 4, kPid = 5; }
namespace ThreadEnd { constexpr uint32_t kThread = 1; }
namespace Event {
constexpr uint32_t kKind = 1, kTimeDeltaNs = 2, kCodeId = 3, kLine = 4, kDepth = 5, kLocals = 6,
                   kValue = 7, kException = 8, kThread = 9, kTimeNs = 11, kFullState = 12,
                   kLocalsIncomplete = 13;
}
namespace Binding { constexpr uint32_t kSlot = 1, kName = 2, kValue = 3, kUnbound = 4; }
namespace ExceptionInfo { constexpr uint32_t kTypeName = 1, kMessage = 2, kMessageTruncated = 3; }
namespace Value {
constexpr uint32_t kNone = 1, kBool = 2, kInt = 3, kBigInt = 4, kFloat = 5, kStr = 6, kBytes = 7,
                   kContainer = 8, kObject = 9, kRedacted = 10;
}
namespace BigInt { constexpr uint32_t kNegative = 1, kMagnitudeLe = 2, kBitLength = 3, kTruncated = 4; }
namespace Text { constexpr uint32_t kText = 1, kLength = 2, kTruncated = 3; }
namespace Blob { constexpr uint32_t kData = 1, kLength = 2, kTruncated = 3; }
namespace Container {
constexpr uint32_t kKind = 1, kId = 2, kLength = 3, kItems = 4, kTruncated = 5, kReusedItems = 6;
}
namespace ObjectRef {
constexpr uint32_t kTypeName = 1, kId = 2, kRepr = 3, kReprTruncated = 4, kReprError = 5;
}
namespace Loss { constexpr uint32_t kThread = 1, kDroppedRecords = 2, kDroppedBytes = 3, kReason = 4; }
namespace Sample { constexpr uint32_t kThread = 1, kTimeNs = 2, kCodeIds = 3, kLines = 4, kGil = 5, kIdle = 6; }
namespace AgentStatus { constexpr uint32_t kState = 1, kMessage = 2, kTimeNs = 3; }

}  // namespace pyrewind::wire::fields

namespace pyrewind::wire {
// Mirrors of the schema enums.
enum class EventKind : uint32_t { kCall = 1, kLine = 2, kReturn = 3, kException = 4, kExceptionHandled = 5 };
enum class ContainerKind : uint32_t { kList = 1, kTuple = 2, kDict = 3, kSet = 4, kFrozenSet = 5 };
enum class AgentState : uint32_t { kTracing = 1, kStopped = 2, kWarning = 3 };
}  // namespace pyrewind::wire
