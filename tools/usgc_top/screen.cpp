// tools/usgc_top/screen.cpp — the interactive view (see screen.hpp).
#include "tools/usgc_top/screen.hpp"

#include <ncurses.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "kernel_iface/process_info.hpp"
#include "tools/usgc_top/model.hpp"
#include "tools/usgc_top/profile_request.hpp"
#include "tools/usgc_top/views.hpp"

namespace usgc::top {

namespace {

class Screen {
 public:
  explicit Screen(const Options& options) : options_(options) {
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    if (options.detail_pid != 0) {
      selected_pid_ = options.detail_pid;
      in_detail_ = true;
    }
  }
  ~Screen() { endwin(); }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  int run() {
    Sampler sampler;
    snapshot_ = sampler.sample();
    auto next_sample = std::chrono::steady_clock::now() + delay();
    long refreshes = 0;
    for (;;) {
      sort_processes(snapshot_.processes, sort_key_);
      keep_selection_valid();
      draw();
      auto now = std::chrono::steady_clock::now();
      if (now >= next_sample) {
        snapshot_ = sampler.sample();
        settle_profile_request();
        next_sample = now + delay();
        if (options_.iterations > 0 && ++refreshes >= options_.iterations) return 0;
        continue;
      }
      int wait_ms = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(next_sample - now).count());
      timeout(std::max(wait_ms, 1));
      int key = getch();
      if (key == ERR) continue;
      if (!handle_key(key)) return 0;
    }
  }

 private:
  std::chrono::steady_clock::duration delay() const {
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(options_.delay_seconds));
  }

  // False to quit.
  bool handle_key(int key) {
    switch (key) {
      case 'q':
      case 'Q':
        return false;
      case 'm':
        sort_key_ = SortKey::kMemory;
        break;
      case 'a':
        sort_key_ = SortKey::kAllocRate;
        break;
      case 'p':
        sort_key_ = SortKey::kPid;
        break;
      case 'h':
        request_profile();
        break;
      case 'c':
        sort_key_ = SortKey::kCommand;
        break;
      case KEY_UP:
        move_selection(-1);
        break;
      case KEY_DOWN:
        move_selection(1);
        break;
      case KEY_ENTER:
      case '\n':
      case '\r':
        in_detail_ = !in_detail_;
        break;
      case 27:  // Esc
      case KEY_BACKSPACE:
      case 127:
      case 'b':
        in_detail_ = false;
        break;
      default:
        break;
    }
    return true;
  }

  // h: asks the selected process (the one of the detail view) for its heap profile.
  void request_profile() {
    if (profile_pending_) return;  // one at a time; the status line says which
    if (selected_pid_ == 0) {
      profile_status_ = "no process selected";
      return;
    }
    profile_pending_ = send_profile_request(selected_pid_, &profile_request_, &profile_status_);
  }

  // After each sample: the answer, if the process gave one, or a timeout after 15 s.
  void settle_profile_request() {
    if (!profile_pending_) return;
    for (const Process& process : snapshot_.processes) {
      if (process.block.pid != profile_request_.pid) continue;
      if (profile_request_outcome(profile_request_, process.block, &profile_status_) !=
          ProfileOutcome::kPending) {
        profile_pending_ = false;
        return;
      }
    }
    if (std::chrono::steady_clock::now() - profile_request_.sent > std::chrono::seconds(15)) {
      profile_status_ = "pid " + std::to_string(profile_request_.pid) +
                        " has not answered the heap-profile request within 15 s (it answers "
                        "from its allocator's slow path: it must be allocating)";
      profile_pending_ = false;
    }
  }

  int selected_index() const {
    for (size_t i = 0; i < snapshot_.processes.size(); ++i) {
      if (snapshot_.processes[i].block.pid == selected_pid_) return static_cast<int>(i);
    }
    return -1;
  }

  void move_selection(int step) {
    if (snapshot_.processes.empty()) return;
    int index = selected_index();
    index = std::clamp(index + step, 0, static_cast<int>(snapshot_.processes.size()) - 1);
    selected_pid_ = snapshot_.processes[static_cast<size_t>(index)].block.pid;
  }

  void keep_selection_valid() {
    if (in_detail_) return;  // the detail view keeps its pid, and says when it is gone
    if (selected_index() < 0 && !snapshot_.processes.empty())
      selected_pid_ = snapshot_.processes[0].block.pid;
  }

  void draw() {
    erase();
    int rows = LINES;
    mvprintw(0, 0, "usgc-top - %zu usgc process%s of uid %u, sorted by %s, every %.1fs",
             snapshot_.processes.size(), snapshot_.processes.size() == 1 ? "" : "es",
             kernel::current_user_id(), sort_key_name(sort_key_), options_.delay_seconds);
    mvprintw(1, 0, "%s",
             in_detail_ ? "Enter/Esc: back  h: heap profile  q: quit"
                        : "Up/Down: select  Enter: detail  m/a/p/c: sort by memory/alloc "
                          "rate/pid/command  h: heap profile  q: quit");
    int line = 3;
    int notes_room = std::min<int>(static_cast<int>(snapshot_.notes.size()), 4);
    int last_body_line = rows - 1 - notes_room;
    if (in_detail_) {
      int index = selected_index();
      if (index < 0) {
        mvprintw(line, 0,
                 "pid %d: no usgc statistics block (exited, USGC_STATS=0, or not a usgc process)",
                 selected_pid_);
      } else {
        for (const std::string& text :
             detail_lines(snapshot_.processes[static_cast<size_t>(index)])) {
          if (line > last_body_line) break;
          mvprintw(line++, 0, "%s", text.c_str());
        }
      }
    } else {
      attron(A_BOLD);
      mvprintw(line++, 0, "%s", row_header().c_str());
      attroff(A_BOLD);
      for (const Process& process : snapshot_.processes) {
        if (line > last_body_line) break;
        bool selected = process.block.pid == selected_pid_;
        if (selected) attron(A_REVERSE);
        mvprintw(line++, 0, "%s", row_text(process).c_str());
        if (selected) attroff(A_REVERSE);
      }
    }
    if (!profile_status_.empty()) mvprintw(2, 0, "%s", profile_status_.c_str());
    for (int i = 0; i < notes_room; ++i) {
      mvprintw(rows - notes_room + i, 0, "%s", snapshot_.notes[static_cast<size_t>(i)].c_str());
    }
    refresh();
  }

  const Options& options_;
  Snapshot snapshot_;
  SortKey sort_key_ = SortKey::kMemory;
  int selected_pid_ = 0;
  bool in_detail_ = false;
  // The heap-profile request of the `h` key (one at a time) and its status line (row 2).
  ProfileRequest profile_request_;
  bool profile_pending_ = false;
  std::string profile_status_;
};

}  // namespace

int run_screen(const Options& options) {
  Screen screen(options);
  return screen.run();
}

}  // namespace usgc::top
