#include "parallel/comm/arrival_probe.h"

#include <pthread.h>

#include <chrono>
#include <list>
#include <sstream>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace trident::parallel::comm {

namespace {
// Reply layout (int64 words).
enum ReplyField {
  kLastSeq,
  kLastOp,
  kLastDtype,
  kLastCount,
  kAskedOp,  // -1 when the member has not posted the asked number (or it fell out of history)
  kAskedDtype,
  kAskedCount,
  kSendsToAsker,
  kRecvsFromAsker,
  kReplyWords
};
constexpr int kQueryWords = 2;  // {reply tag, asked seq}

std::string describe_published(int64_t op, int64_t dtype, int64_t count, uint64_t seq) {
  OpInfo info;
  info.op = static_cast<CommOp>(op);
  info.dtype = static_cast<DType>(dtype);
  info.count = count;
  info.seq = seq;
  return info.describe();
}

bool collective_matches(const OpInfo& late, int64_t op, int64_t dtype, int64_t count) {
  if (static_cast<CommOp>(op) != late.op || static_cast<DType>(dtype) != late.dtype) return false;
  // all_to_all_v counts legitimately differ between members.
  return late.op == CommOp::AllToAllV || count == late.count;
}
}  // namespace

ArrivalProbe::ArrivalProbe(const MpiComm& group, double grace_seconds)
    : control_(group.duplicate(".probe")), grace_seconds_(grace_seconds) {
  published_.sends_to.assign(static_cast<size_t>(control_.size()), 0);
  published_.recvs_from.assign(static_cast<size_t>(control_.size()), 0);
  service_ = std::thread([this] { serve(); });
}

ArrivalProbe::~ArrivalProbe() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  service_.join();
}

void ArrivalProbe::number(OpInfo& info) {
  std::lock_guard<std::mutex> lock(mutex_);
  switch (info.op) {
    case CommOp::Send:
      info.seq = published_.sends_to[static_cast<size_t>(info.peer)] + 1;
      break;
    case CommOp::Recv:
      info.seq = published_.recvs_from[static_cast<size_t>(info.peer)] + 1;
      break;
    default:
      info.seq = published_.last_seq + 1;
  }
  record_locked(info);
}

void ArrivalProbe::record(const OpInfo& info) {
  std::lock_guard<std::mutex> lock(mutex_);
  record_locked(info);
}

void ArrivalProbe::record_locked(const OpInfo& info) {
  switch (info.op) {
    case CommOp::Send: published_.sends_to[static_cast<size_t>(info.peer)] = info.seq; break;
    case CommOp::Recv: published_.recvs_from[static_cast<size_t>(info.peer)] = info.seq; break;
    default:
      published_.last_seq = info.seq;
      published_.last = info;
      published_.recent[info.seq % published_.recent.size()] = info;
  }
}

std::vector<int64_t> ArrivalProbe::answer(int asker, uint64_t asked_seq) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int64_t> reply(kReplyWords, -1);
  const Published& p = published_;
  reply[kLastSeq] = static_cast<int64_t>(p.last_seq);
  reply[kLastOp] = static_cast<int64_t>(p.last.op);
  reply[kLastDtype] = static_cast<int64_t>(p.last.dtype);
  reply[kLastCount] = p.last.count;
  const OpInfo& at = p.recent[asked_seq % p.recent.size()];
  if (asked_seq > 0 && at.seq == asked_seq) {
    reply[kAskedOp] = static_cast<int64_t>(at.op);
    reply[kAskedDtype] = static_cast<int64_t>(at.dtype);
    reply[kAskedCount] = at.count;
  }
  reply[kSendsToAsker] = static_cast<int64_t>(p.sends_to[static_cast<size_t>(asker)]);
  reply[kRecvsFromAsker] = static_cast<int64_t>(p.recvs_from[static_cast<size_t>(asker)]);
  return reply;
}

void ArrivalProbe::serve() {
  struct PendingReply {
    std::vector<int64_t> words;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  std::list<PendingReply> replies;
  std::array<int64_t, kQueryWords> query{};
  MPI_Request incoming = MPI_REQUEST_NULL;
  auto post_receive = [&] {
    MPI_Irecv(query.data(), kQueryWords, MPI_INT64_T, MPI_ANY_SOURCE, kQueryTag, control_.get(),
              &incoming);
  };
  post_receive();
  pthread_setname_np(pthread_self(), "arrival-probe");  // tells it apart in profiles
  while (true) {
    {
      std::lock_guard<std::mutex> lock(stop_mutex_);
      if (stop_) break;
    }
    int arrived = 0;
    MPI_Status status;
    if (MPI_Test(&incoming, &arrived, &status) != MPI_SUCCESS) break;
    if (arrived) {
      PendingReply& reply = replies.emplace_back();
      reply.words = answer(status.MPI_SOURCE, static_cast<uint64_t>(query[1]));
      MPI_Isend(reply.words.data(), kReplyWords, MPI_INT64_T, status.MPI_SOURCE,
                static_cast<int>(query[0]), control_.get(), &reply.request);
      post_receive();
      continue;
    }
    for (auto it = replies.begin(); it != replies.end();) {
      int done = 0;
      MPI_Test(&it->request, &done, MPI_STATUS_IGNORE);
      it = done ? replies.erase(it) : std::next(it);
    }
    // Queries only come after a timeout and are answered within the grace period (a second
    // by default), so a slow pace costs nothing there. A fast one is not free: each poll is a
    // pass of MPI's progress engine, and on cores shared by more ranks than cores (a laptop,
    // a CI box) a wake-up every 2 ms per communicator took a percent of a core per rank.
    std::unique_lock<std::mutex> lock(stop_mutex_);
    stop_cv_.wait_for(lock, kServicePeriod, [this] { return stop_; });
  }
  if (incoming != MPI_REQUEST_NULL) {
    MPI_Cancel(&incoming);
    MPI_Wait(&incoming, MPI_STATUS_IGNORE);
  }
  // A reply to a rank that has gone away may never complete; let MPI drop it.
  for (PendingReply& reply : replies) {
    if (reply.request != MPI_REQUEST_NULL) MPI_Request_free(&reply.request);
  }
}

std::string ArrivalProbe::diagnose(const OpInfo& late) const {
  const bool point_to_point = late.op == CommOp::Send || late.op == CommOp::Recv;
  std::vector<int> members;
  if (point_to_point) {
    members.push_back(late.peer);
  } else {
    for (int r = 0; r < control_.size(); ++r) {
      if (r != control_.rank()) members.push_back(r);
    }
  }
  const int reply_tag = next_reply_tag_.fetch_add(1) % (kQueryTag - 1);
  const std::array<int64_t, kQueryWords> query{reply_tag, static_cast<int64_t>(late.seq)};
  std::vector<std::vector<int64_t>> replies(members.size(), std::vector<int64_t>(kReplyWords));
  std::vector<MPI_Request> sends(members.size(), MPI_REQUEST_NULL);
  std::vector<MPI_Request> recvs(members.size(), MPI_REQUEST_NULL);
  for (size_t i = 0; i < members.size(); ++i) {
    MPI_Irecv(replies[i].data(), kReplyWords, MPI_INT64_T, members[i], reply_tag, control_.get(),
              &recvs[i]);
    MPI_Isend(query.data(), kQueryWords, MPI_INT64_T, members[i], kQueryTag, control_.get(),
              &sends[i]);
  }
  std::vector<bool> answered(members.size(), false);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(grace_seconds_);
  size_t remaining = members.size();
  while (remaining > 0 && std::chrono::steady_clock::now() < deadline) {
    for (size_t i = 0; i < members.size(); ++i) {
      if (answered[i]) continue;
      int done = 0;
      MPI_Test(&recvs[i], &done, MPI_STATUS_IGNORE);
      if (done) {
        answered[i] = true;
        --remaining;
      }
    }
    if (remaining > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (size_t i = 0; i < members.size(); ++i) {
    if (!answered[i]) {
      MPI_Cancel(&recvs[i]);
      MPI_Wait(&recvs[i], MPI_STATUS_IGNORE);
    }
    int done = 0;
    MPI_Test(&sends[i], &done, MPI_STATUS_IGNORE);
    if (!done) MPI_Request_free(&sends[i]);
  }

  std::vector<std::string> missing;  // dead, wedged, or behind
  std::vector<std::string> mismatched;
  std::vector<std::string> arrived;
  for (size_t i = 0; i < members.size(); ++i) {
    const std::string who = control_.describe_member(members[i]);
    if (!answered[i]) {
      std::ostringstream line;
      line << who << " (did not answer within " << grace_seconds_
           << " s: its process is dead or wedged)";
      missing.push_back(line.str());
      continue;
    }
    const std::vector<int64_t>& r = replies[i];
    if (point_to_point) {
      // My send #k needs the peer's receive #k and vice versa.
      const bool is_recv = late.op == CommOp::Recv;
      const int64_t theirs = is_recv ? r[kSendsToAsker] : r[kRecvsFromAsker];
      if (theirs < static_cast<int64_t>(late.seq)) {
        missing.push_back(who + " (has posted " + std::to_string(theirs) +
                          (is_recv ? " send(s) to" : " receive(s) from") + " this rank)");
      } else {
        arrived.push_back(who);
      }
      continue;
    }
    const auto their_last = static_cast<uint64_t>(r[kLastSeq]);
    if (their_last < late.seq) {
      const std::string where =
          their_last == 0 ? std::string("has posted no collective on this group yet")
                          : "last posted " + describe_published(r[kLastOp], r[kLastDtype],
                                                                r[kLastCount], their_last);
      missing.push_back(who + " (" + where + ")");
    } else if (r[kAskedOp] >= 0 &&
               !collective_matches(late, r[kAskedOp], r[kAskedDtype], r[kAskedCount])) {
      mismatched.push_back(who + " posted " +
                           describe_published(r[kAskedOp], r[kAskedDtype], r[kAskedCount],
                                              late.seq));
    } else {
      arrived.push_back(who);
    }
  }

  std::ostringstream out;
  auto join = [&out](const std::vector<std::string>& items) {
    for (size_t i = 0; i < items.size(); ++i) out << (i ? "; " : "") << items[i];
  };
  if (!missing.empty()) {
    out << "not arrived: ";
    join(missing);
  }
  if (!mismatched.empty()) {
    out << (missing.empty() ? "" : ". ") << "desynchronised (a different op under the same "
        << "number): ";
    join(mismatched);
  }
  if (missing.empty() && mismatched.empty()) {
    out << "every other member has posted it; the transport is stalled or the operation is "
           "slower than the timeout (raise parallel.comm_timeout_s)";
  } else if (!arrived.empty()) {
    out << ". arrived: ";
    join(arrived);
  }
  return out.str();
}

}  // namespace trident::parallel::comm
